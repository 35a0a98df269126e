"""Sharing contracts: who may receive which documents. Default deny."""

from contracts.agencies import AGENCY_KINDS, Agency, AgencyRegistry
from contracts.errors import AgencyInvalid, ContractError, ContractInvalid, RouteDenied
from contracts.index import ContractIndex
from contracts.loader import load_contract_dir, load_contract_file
from contracts.model import SCOPES, Contract, Decision, Grant

__all__ = [
    "AGENCY_KINDS",
    "SCOPES",
    "Agency",
    "AgencyInvalid",
    "AgencyRegistry",
    "Contract",
    "ContractError",
    "ContractIndex",
    "ContractInvalid",
    "Decision",
    "Grant",
    "RouteDenied",
    "load_contract_dir",
    "load_contract_file",
]
