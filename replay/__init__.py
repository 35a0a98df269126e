"""The auditor's side: read the trail and the topics back and verify them."""

from replay.verify import Break, TrailVerifier, VerifyReport, describe, verify_kafka

__all__ = ["Break", "TrailVerifier", "VerifyReport", "describe", "verify_kafka"]
