"""Sharing contracts: who may receive which documents, which part of them, how protected.
Default deny."""

from contracts.agencies import AGENCY_KINDS, CMS_ENVELOPE, Agency, AgencyRegistry
from contracts.catalog import CLASSIFICATIONS, DocumentCatalog, DocumentInfo
from contracts.errors import AgencyInvalid, ContractError, ContractInvalid, RouteDenied
from contracts.explain import Verdict, explain, verdicts
from contracts.expr import Condition, ConditionError, compile_condition
from contracts.index import ContractIndex
from contracts.lint import LintReport, lint_contract_dir, load_contract_dir
from contracts.loader import Problem, read_contract_file
from contracts.masking import MaskRule
from contracts.model import (
    AVRO,
    JSON,
    SCOPES,
    STATUS_EVENTS,
    TRANSPORT_EVENT,
    Contract,
    Decision,
    DeliveryPlan,
    Denial,
    Grant,
)
from contracts.projection import (
    Projection,
    compile_projection,
    field_paths_of_avro,
    validate_paths,
)

__all__ = [
    "AGENCY_KINDS",
    "AVRO",
    "CLASSIFICATIONS",
    "CMS_ENVELOPE",
    "JSON",
    "SCOPES",
    "STATUS_EVENTS",
    "TRANSPORT_EVENT",
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
    "DeliveryPlan",
    "Denial",
    "DocumentCatalog",
    "DocumentInfo",
    "Grant",
    "LintReport",
    "MaskRule",
    "Problem",
    "Projection",
    "RouteDenied",
    "Verdict",
    "compile_condition",
    "compile_projection",
    "explain",
    "field_paths_of_avro",
    "lint_contract_dir",
    "load_contract_dir",
    "read_contract_file",
    "validate_paths",
    "verdicts",
]
