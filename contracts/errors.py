"""Errors of the contracts package, each with a stable code."""

from __future__ import annotations

from message_formats.errors import CodedError


class ContractError(CodedError):
    """Its text names the contract file and line when known: ``path:line: CODE: message``."""

    code = "CONTRACT_ERROR"


class ContractInvalid(ContractError):
    code = "CONTRACT_INVALID"


class AgencyInvalid(ContractError):
    code = "AGENCY_INVALID"


class RouteDenied(ContractError):
    """No contract permits any recipient: default deny."""

    code = "ROUTE_NO_CONTRACT"
