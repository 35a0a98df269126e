from gateway.logs import configure_logging

# The library logs through structlog; in tests only warnings and errors are worth reading.
configure_logging("warning")
