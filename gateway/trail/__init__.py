"""The gateway's trail: records chained and sealed, and the archive files."""
