"""What a decision becomes on the wire: the seals on what the gateway gives."""
