"""structlog set-up: JSON for the service, readable lines in a terminal; always to stderr."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_now,
        cache_logger_on_first_use=False,
    )


def _stderr_now(*_: object) -> structlog.PrintLogger:
    """A logger on whatever sys.stderr is when a line is logged, not when logging was set up
    (a caller may have replaced it since, as a test's capture does)."""
    return structlog.PrintLogger(sys.stderr)
