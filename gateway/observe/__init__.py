"""Watching the gateway run: structured logs, Prometheus metrics, and whether the broker
answers."""
