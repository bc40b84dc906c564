"""The config file: YAML loading with ${ENV} (loader), the section base (section), the whole file (root)."""
