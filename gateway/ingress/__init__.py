"""The doors: the HTTP door and its guard, the desk it hands submissions to, the consumer of the
ingress topic, the per-agency limits, and what an agency runs to submit over Kafka."""
