"""Model bundles: the manifest (the contract between export and board), loading with hash and
signature checks, and the bundle's files read safely."""
