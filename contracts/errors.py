"""Errors of the contracts package, each with a stable code."""

from __future__ import annotations

from pathlib import Path


class ContractError(Exception):
    code: str = "CONTRACT_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        path: Path | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        where = f"{self.path}:{self.line or 1}: " if self.path else ""
        return f"{where}{self.code}: {self.message}"


class ContractInvalid(ContractError):
    code = "CONTRACT_INVALID"


class AgencyInvalid(ContractError):
    code = "AGENCY_INVALID"


class RouteDenied(ContractError):
    """No contract permits any recipient: default deny."""

    code = "ROUTE_NO_CONTRACT"
