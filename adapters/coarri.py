"""SMDG container discharge/loading reports (COARRI, "coarri-edifact"): the terminal's answer
to a COPRAR, in the same layout, read and written by adapters/coprar.py."""

from __future__ import annotations

from typing import ClassVar

from .coprar import ContainerHandlingAdapter


class ContainerReportAdapter(ContainerHandlingAdapter):
    """SMDG COARRI, container discharge/loading report <-> px.canonical.ContainerHandling."""

    format_id: ClassVar[str] = "coarri-edifact"
    document_type: ClassVar[str] = "container-report"
    message_type: ClassVar[str] = "COARRI"
    kind: ClassVar[str] = "Report"

    __slots__ = ()
