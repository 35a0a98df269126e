"""The gateway's home: its configuration, the parts loaded from it, what is reloaded live, and
creating a home."""
