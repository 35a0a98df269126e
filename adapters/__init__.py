"""Format adapters: document bytes to canonical records and back. Imports only
message_formats; never touches Kafka or the network."""

from .baplie import BayPlanAdapter, fal7_manifest
from .base import (
    ENTRY_POINT_GROUP,
    Adapter,
    AdapterError,
    AdapterRegistrationError,
    DerivedDocument,
    DerivesDocuments,
    DocumentPart,
    NamesEdifactDocuments,
    ParseResult,
    RecognisesEdifact,
    RecognisesJson,
    RecognisesRoot,
    RenderError,
    RuleViolationError,
    UnknownFormatError,
    document_derivers,
)
from .cargo_xml import CargoXmlAdapter, is_valid_awb_number
from .cn_manifest import CnManifestAdapter
from .coarri import ContainerReportAdapter
from .coprar import ContainerHandlingAdapter, ContainerOrderAdapter
from .cuscar import CuscarAdapter
from .dcsa_ebl import DcsaEblAdapter
from .dcsa_si import DcsaShippingInstructionsAdapter
from .detect import (
    Confidence,
    Detection,
    FormatDetector,
    FormatNotDetectedError,
    ManifestType,
    customs_manifest_type,
)
from .fal1 import Fal1Adapter, is_valid_imo_number
from .fal2 import Fal2Adapter
from .fal3 import Fal3Adapter
from .fal4 import Fal4Adapter
from .fal5 import Fal5Adapter
from .fal6 import Fal6Adapter
from .fal7 import Fal7Adapter
from .iftmin import IftminAdapter
from .iftsta import IftstaAdapter
from .manifest import CustomsManifestAdapter
from .paxlst import PaxlstAdapter, PaxlstCrewListAdapter, PaxlstPassengerListAdapter
from .registry import AdapterRegistry, PluginProblem, builtin_adapters, installed_schemas
from .warning import SafetyWarningAdapter
from .waybill import MultimodalWaybillAdapter

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterError",
    "AdapterRegistrationError",
    "AdapterRegistry",
    "BayPlanAdapter",
    "CargoXmlAdapter",
    "CnManifestAdapter",
    "Confidence",
    "ContainerHandlingAdapter",
    "ContainerOrderAdapter",
    "ContainerReportAdapter",
    "CuscarAdapter",
    "CustomsManifestAdapter",
    "DcsaEblAdapter",
    "DcsaShippingInstructionsAdapter",
    "DerivedDocument",
    "DerivesDocuments",
    "Detection",
    "DocumentPart",
    "Fal1Adapter",
    "Fal2Adapter",
    "Fal3Adapter",
    "Fal4Adapter",
    "Fal5Adapter",
    "Fal6Adapter",
    "Fal7Adapter",
    "FormatDetector",
    "FormatNotDetectedError",
    "IftminAdapter",
    "IftstaAdapter",
    "ManifestType",
    "MultimodalWaybillAdapter",
    "NamesEdifactDocuments",
    "ParseResult",
    "PaxlstAdapter",
    "PaxlstCrewListAdapter",
    "PaxlstPassengerListAdapter",
    "PluginProblem",
    "RecognisesEdifact",
    "RecognisesJson",
    "RecognisesRoot",
    "RenderError",
    "RuleViolationError",
    "SafetyWarningAdapter",
    "UnknownFormatError",
    "builtin_adapters",
    "customs_manifest_type",
    "document_derivers",
    "fal7_manifest",
    "installed_schemas",
    "is_valid_awb_number",
    "is_valid_imo_number",
]
