"""One module per group of CLI subcommands; each function takes parsed arguments, returns an exit code."""
