from __future__ import annotations

from gateway.observe.metrics import STAGES, GatewayMetrics


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_two_instances_do_not_share_counts() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    first.received("cn.port.sh", "fal1-xml")
    first.received("cn.port.sh", "fal1-xml")
    second.received("cn.port.sh", "fal1-xml")
    labels = {"agency": "cn.port.sh", "format": "fal1-xml"}
    assert value(first, "portgw_documents_received_total", **labels) == 2
    assert value(second, "portgw_documents_received_total", **labels) == 1


def test_every_counter_counts_under_its_labels() -> None:
    metrics = GatewayMetrics()
    metrics.accepted("fal1", "cn.port.sh")
    metrics.rejected(None, "cn.port.sh", "XSD_INVALID")
    metrics.rejected("fal1", "cn.port.sh", "ROUTE_NO_CONTRACT")
    metrics.delivered("fal1", "cn.customs.sh")
    metrics.duplicate("cn.port.sh")
    metrics.refused_at_door("cn.port.sh", "RATE_LIMITED")
    assert value(metrics, "portgw_documents_accepted_total", document_type="fal1",
                 agency="cn.port.sh") == 1
    assert value(metrics, "portgw_documents_rejected_total", document_type="unknown",
                 agency="cn.port.sh", code="XSD_INVALID") == 1
    assert value(metrics, "portgw_documents_rejected_total", document_type="fal1",
                 agency="cn.port.sh", code="ROUTE_NO_CONTRACT") == 1
    assert value(metrics, "portgw_deliveries_total", document_type="fal1",
                 recipient="cn.customs.sh") == 1
    assert value(metrics, "portgw_duplicates_total", agency="cn.port.sh") == 1
    assert value(metrics, "portgw_door_refusals_total", agency="cn.port.sh",
                 code="RATE_LIMITED") == 1


def test_stage_histogram_lag_and_in_flight() -> None:
    metrics = GatewayMetrics()
    metrics.observe_stage("authenticate", 0.0003)
    metrics.observe_stage("total", 0.02)
    metrics.set_lag(3, 17)
    metrics.set_lag(3, 5)
    metrics.set_in_flight(9)
    assert value(metrics, "portgw_stage_seconds_bucket", stage="authenticate",
                 le="0.0005") == 1
    assert value(metrics, "portgw_stage_seconds_bucket", stage="authenticate",
                 le="0.00025") == 0
    assert value(metrics, "portgw_stage_seconds_count", stage="total") == 1
    assert all(value(metrics, "portgw_stage_seconds_count", stage=s) is not None
               for s in STAGES)
    assert value(metrics, "portgw_ingress_lag_messages", partition="3") == 5
    assert value(metrics, "portgw_in_flight_documents") == 9


def test_render_is_the_prometheus_text_with_the_samples() -> None:
    metrics = GatewayMetrics()
    metrics.received("cn.port.sh", "fal1-xml")
    metrics.refused_at_door("unknown", "AUTH_UNKNOWN_SENDER")
    metrics.observe_stage("route", 0.001)
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'portgw_documents_received_total{agency="cn.port.sh",format="fal1-xml"} 1.0' in text
    assert 'portgw_door_refusals_total{agency="unknown",code="AUTH_UNKNOWN_SENDER"} 1.0' in text
    assert 'portgw_stage_seconds_bucket{le="0.0001",stage="route"} 0.0' in text
    assert 'portgw_stage_seconds_bucket{le="5.0",stage="route"} 1.0' in text


def test_a_stage_not_listed_is_counted_too_and_children_are_kept() -> None:
    metrics = GatewayMetrics()
    metrics.observe_stage("lifecycle", 0.001)
    metrics.observe_stage("lifecycle", 0.002)
    metrics.delivered("fal1", "cn.customs.sh")
    metrics.delivered("fal1", "cn.customs.sh")
    assert value(metrics, "portgw_stage_seconds_count", stage="lifecycle") == 2
    assert value(metrics, "portgw_deliveries_total", document_type="fal1",
                 recipient="cn.customs.sh") == 2


def test_pulls_and_acknowledgements_per_recipient() -> None:
    metrics = GatewayMetrics()
    customs = {"recipient": "cn.customs.sh"}
    metrics.pulled("cn.customs.sh", 100, 40, 12.5)
    metrics.pulled("cn.customs.sh", 40, 3, None)  # saw nothing it left: the age stays
    assert value(metrics, "portgw_deliveries_pulled_total", **customs) == 140
    assert value(metrics, "portgw_deliveries_pending", **customs) == 3
    assert value(metrics, "portgw_deliveries_oldest_pending_seconds", **customs) == 12.5
    metrics.pulled("cn.customs.sh", 3, 0, None)
    assert value(metrics, "portgw_deliveries_pending", **customs) == 0
    assert value(metrics, "portgw_deliveries_oldest_pending_seconds", **customs) == 0
    metrics.acknowledged("cn.customs.sh", "taken", 143)
    metrics.acknowledged("cn.customs.sh", "ACK_SIGNATURE_INVALID")
    assert value(metrics, "portgw_acknowledgements_total", outcome="taken", **customs) == 1
    assert value(metrics, "portgw_acknowledgements_total", outcome="ACK_SIGNATURE_INVALID",
                 **customs) == 1
    assert value(metrics, "portgw_deliveries_taken_total", **customs) == 143
