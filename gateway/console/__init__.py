"""The operators' and auditors' console: server-rendered pages on the operators' door."""
