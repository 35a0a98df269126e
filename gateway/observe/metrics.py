"""The gateway's Prometheus metrics, in a registry each `GatewayMetrics` owns (so two gateways
in one process, or two tests, never share counts), with the process's own (`process_*`:
memory, CPU, open files; `python_*`: the interpreter and its garbage collector), read from
/proc when /metrics is asked, never on a document's path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

STAGES = ("size", "authenticate", "adapter", "adapt", "event", "route", "deliveries", "publish",
          "trail", "receipt", "total")
# 0.1 ms .. 5 s: a stage is mostly CPU work of well under a millisecond (SM2 verify ~0.3 ms),
# publishing and the whole path wait on the broker (milliseconds to seconds).
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                 0.25, 0.5, 1.0, 2.5, 5.0)
UNKNOWN = "unknown"

M = TypeVar("M", Counter, Gauge, Histogram)


class Children(Generic[M]):
    """A labelled metric's children, each looked up once: `labels()` checks and converts its
    values and takes a lock on every call, several times per document."""

    __slots__ = ("_children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


Totals = Mapping[tuple[str, ...], float]


@dataclass(frozen=True, slots=True)
class Exchange:
    """What this process has counted of the exchange, by label values (in the metric's label
    order): what the operators' console draws. Read from the counters, never kept apart."""

    accepted: Totals  # (document_type, agency)
    rejected: Totals  # (document_type, agency, code)
    flows: Totals  # (sender, recipient)
    lag: Totals  # (partition,)
    decided_seconds: float  # the whole path, summed over
    decided: float  # documents timed


class GatewayMetrics:
    __slots__ = ("_accepted", "_acknowledgements", "_certificates", "_deliveries",
                 "_door_refusals", "_duplicates", "_flows", "_in_flight", "_lag",
                 "_oldest_pending", "_pending", "_pulled", "_push_dead_lettered",
                 "_push_failures", "_push_oldest", "_push_pending", "_received",
                 "_rejected", "_stage_seconds", "_taken", "_workers_lost", "registry")

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._received = self._counter("portgw_documents_received",
                                       "Documents taken from the ingress", "agency", "format")
        self._accepted = self._counter("portgw_documents_accepted", "Documents accepted",
                                       "document_type", "agency")
        self._rejected = self._counter("portgw_documents_rejected",
                                       "Documents rejected, by error code",
                                       "document_type", "agency", "code")
        self._deliveries = self._counter("portgw_deliveries",
                                         "Deliveries published, one per recipient",
                                         "document_type", "recipient")
        self._flows = self._counter("portgw_flows",
                                    "Deliveries published, by sender and recipient",
                                    "sender", "recipient")
        self._duplicates = self._counter("portgw_duplicates",
                                         "Submissions of a document already decided", "agency")
        self._door_refusals = self._counter("portgw_door_refusals",
                                            "HTTP submissions refused before the ingress",
                                            "agency", "code")
        self._workers_lost = self._counter(
            "portgw_parse_workers_lost",
            "Parse workers replaced: overran (a document's time), died, could not start",
            "why")
        self._stage_seconds = Children(Histogram(
            "portgw_stage_seconds", "Seconds spent in each pipeline stage", ("stage",),
            buckets=STAGE_BUCKETS, registry=self.registry))
        for stage in STAGES:
            self._stage_seconds(stage)
        self._lag = Children(Gauge("portgw_ingress_lag_messages",
                                   "Records on the ingress partition not yet consumed",
                                   ("partition",), registry=self.registry))
        self._in_flight = Gauge("portgw_in_flight_documents",
                                "Documents being worked on now", registry=self.registry)
        self._certificates = Children(Gauge(
            "portgw_certificate_not_after_seconds",
            "When each certificate of the gateway's own expires (Unix time), by its setting",
            ("setting",), registry=self.registry))
        self._pulled = self._counter("portgw_deliveries_pulled",
                                     "Deliveries handed over by HTTP pull", "recipient")
        self._pending = self._gauge(
            "portgw_deliveries_pending",
            "Deliveries on the recipient's topic past its cursor, as of its last pull",
            "recipient")
        self._oldest_pending = self._gauge(
            "portgw_deliveries_oldest_pending_seconds",
            "Age of the oldest delivery its last pull saw and did not hand over (0: none "
            "pending)", "recipient")
        self._acknowledgements = self._counter(
            "portgw_acknowledgements",
            "Recipients' acknowledgements: taken, or the code they were refused with",
            "recipient", "outcome")
        self._taken = self._counter("portgw_deliveries_taken",
                                    "Deliveries recorded as taken in the trail", "recipient")
        self._push_pending = self._gauge(
            "portgw_push_pending_deliveries",
            "Deliveries on a push recipient's topic not yet acknowledged or dead-lettered",
            "recipient")
        self._push_oldest = self._gauge(
            "portgw_push_oldest_pending_seconds",
            "Age of the oldest delivery read for a push recipient and not yet acknowledged or "
            "dead-lettered (0: none)", "recipient")
        self._push_failures = self._counter(
            "portgw_push_failures", "Push attempts that ended without an acknowledgement",
            "recipient", "code")
        self._push_dead_lettered = self._counter(
            "portgw_push_dead_lettered", "Deliveries dead-lettered past the retry horizon",
            "recipient")

    def _counter(self, name: str, documentation: str, *labels: str) -> Children[Counter]:
        return Children(Counter(name, documentation, labels, registry=self.registry))

    def _gauge(self, name: str, documentation: str, *labels: str) -> Children[Gauge]:
        return Children(Gauge(name, documentation, labels, registry=self.registry))

    def received(self, agency: str, format_id: str) -> None:
        self._received(agency, format_id).inc()

    def accepted(self, document_type: str, agency: str) -> None:
        self._accepted(document_type, agency).inc()

    def rejected(self, document_type: str | None, agency: str, code: str) -> None:
        self._rejected(document_type or UNKNOWN, agency, code).inc()

    def delivered(self, document_type: str, recipient: str, *, sender: str = UNKNOWN) -> None:
        self._deliveries(document_type, recipient).inc()
        self._flows(sender, recipient).inc()

    def duplicate(self, agency: str) -> None:
        self._duplicates(agency).inc()

    def refused_at_door(self, agency: str, code: str) -> None:
        self._door_refusals(agency, code).inc()

    def parse_worker_lost(self, why: str) -> None:
        self._workers_lost(why).inc()

    def observe_stage(self, stage: str, seconds: float) -> None:
        self._stage_seconds(stage).observe(seconds)

    def set_lag(self, partition: int, lag: int) -> None:
        self._lag(str(partition)).set(lag)

    def set_certificate_not_after(self, setting: str, not_after: datetime) -> None:
        self._certificates(setting).set(not_after.timestamp())

    def set_in_flight(self, n: int) -> None:
        self._in_flight.set(n)

    def pulled(self, recipient: str, handed: int, pending: int,
               oldest_pending_s: float | None) -> None:
        """A pull's outcome; `oldest_pending_s` None: the pull saw no record it left, so the
        age stays as it was while deliveries are pending."""
        self._pulled(recipient).inc(handed)
        self._pending(recipient).set(pending)
        if pending == 0:
            self._oldest_pending(recipient).set(0)
        elif oldest_pending_s is not None:
            self._oldest_pending(recipient).set(oldest_pending_s)

    def acknowledged(self, recipient: str, outcome: str, taken: int = 0) -> None:
        """An acknowledgement: outcome "taken" with the deliveries recorded, or a code."""
        self._acknowledgements(recipient, outcome).inc()
        if taken:
            self._taken(recipient).inc(taken)

    def exchange(self) -> Exchange:
        sums = {sample.name: sample.value
                for family in self._stage_seconds("total").collect()
                for sample in family.samples}
        return Exchange(accepted=_totals(self._accepted.metric),
                        rejected=_totals(self._rejected.metric),
                        flows=_totals(self._flows.metric),
                        lag=_totals(self._lag.metric),
                        decided_seconds=sums.get("portgw_stage_seconds_sum", 0.0),
                        decided=sums.get("portgw_stage_seconds_count", 0.0))

    def ingress_lag(self) -> int:
        """The records on the ingress partitions not yet consumed, all partitions summed."""
        return int(sum(_totals(self._lag.metric).values()))

    def set_push_pending(self, recipient: str, pending: int, oldest_s: float) -> None:
        self._push_pending(recipient).set(pending)
        self._push_oldest(recipient).set(oldest_s)

    def push_failed(self, recipient: str, code: str) -> None:
        self._push_failures(recipient, code).inc()

    def push_dead_lettered(self, recipient: str) -> None:
        self._push_dead_lettered(recipient).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for GET /metrics."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _totals(metric: Counter | Gauge) -> Totals:
    """Each child's value by its label values: a counter's `_total` samples, a gauge's own."""
    names = {f"{family.name}_total" if family.type == "counter" else family.name
             for family in metric.describe()}
    return MappingProxyType({tuple(sample.labels.values()): sample.value
                             for family in metric.collect() for sample in family.samples
                             if sample.name in names})
