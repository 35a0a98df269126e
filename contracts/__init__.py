"""Sharing contracts: who may receive which documents. Default deny."""

from contracts.agencies import AGENCY_KINDS, Agency, AgencyRegistry
from contracts.errors import AgencyInvalid, ContractError, ContractInvalid, RouteDenied
from contracts.expr import Condition, ConditionError, compile_condition
from contracts.index import ContractIndex
from contracts.loader import load_contract_dir, load_contract_file
from contracts.masking import MaskRule
from contracts.model import SCOPES, Contract, Decision, Grant
from contracts.projection import (
    Projection,
    compile_projection,
    field_paths_of_avro,
    validate_paths,
)

__all__ = [
    "AGENCY_KINDS",
    "SCOPES",
    "Agency",
    "AgencyInvalid",
    "AgencyRegistry",
    "Condition",
    "ConditionError",
    "Contract",
    "ContractError",
    "ContractIndex",
    "ContractInvalid",
    "Decision",
    "Grant",
    "MaskRule",
    "Projection",
    "RouteDenied",
    "compile_condition",
    "compile_projection",
    "field_paths_of_avro",
    "load_contract_dir",
    "load_contract_file",
    "validate_paths",
]
