"""The `portgw` command: `main` assembles the command groups, which share `support`."""
