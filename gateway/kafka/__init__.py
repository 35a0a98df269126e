"""The wire: topic and header names, what is published and read, the link to the broker, and the
local broker."""
