"""The gateway's exceptions. Every one carries a stable code that reaches receipts,
dead letters and the trail."""

from __future__ import annotations


class GatewayError(Exception):
    code: str = "GATEWAY_ERROR"

    def __init__(self, message: str, *, code: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        if code is not None:
            self.code = code


class BrokerUnavailable(GatewayError):
    code = "BROKER_UNAVAILABLE"


class ConfigError(GatewayError):
    code = "CONFIG_INVALID"


class SubmissionRejected(GatewayError):
    """A submission the pipeline refused; `code` says why."""

    code = "SUBMISSION_REJECTED"
