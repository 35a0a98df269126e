"""The gateway's own certificates and when they run out.

A China E-Port recipient refuses envelopes signed under an expired certificate, and a TLS
peer refuses the handshake: both fail at the first delivery after midnight, far from the
cause. So `portgw config check` warns a month ahead (and fails once one has expired), the
gateway logs the same at start, and /metrics exports each certificate's notAfter, for an
alert that fires before either."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from gateway.home.config import GatewayConfig

WARN_WITHIN = timedelta(days=30)
CERT_EXPIRED = "CONFIG_CERT_EXPIRED"
CERT_EXPIRES_SOON = "CONFIG_CERT_EXPIRES_SOON"


@dataclass(frozen=True, slots=True)
class OwnCertificate:
    """One certificate the gateway presents or signs under, named by its setting."""

    setting: str
    not_after: datetime

    def finding(self, now: datetime) -> tuple[str, str] | None:
        """(code, message) when it has expired or expires within WARN_WITHIN, else None."""
        if now >= self.not_after:
            return CERT_EXPIRED, (f"{self.setting}: the certificate expired "
                                  f"(notAfter {self.not_after:%Y-%m-%d %H:%M} UTC)")
        left = self.not_after - now
        if left <= WARN_WITHIN:
            return CERT_EXPIRES_SOON, (f"{self.setting}: the certificate expires in "
                                       f"{left.days} day(s) (notAfter "
                                       f"{self.not_after:%Y-%m-%d %H:%M} UTC)")
        return None


def own_certificates(config: GatewayConfig) -> tuple[OwnCertificate, ...]:
    """The certificates the configuration names: the HTTP door's, the Kafka client's and the
    E-Port signing ones. A file that does not read or hold a certificate is left out here;
    the checks that load it name it."""
    found = (_read(setting, path) for setting, path in _named(config))
    return tuple(certificate for certificate in found if certificate is not None)


def _named(config: GatewayConfig) -> Iterator[tuple[str, Path]]:
    files = (("[http] cert_file", config.http.cert_file and str(config.home /
                                                                  config.http.cert_file)),
             ("[kafka] ssl_cert_file", config.kafka.ssl_cert_file),
             ("[dxp] certificate_file", config.dxp.certificate_file),
             ("[dxp] rsa_certificate_file", config.dxp.rsa_certificate_file))
    for setting, name in files:
        if name:
            yield setting, Path(name)


def _read(setting: str, path: Path) -> OwnCertificate | None:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return OwnCertificate(setting, certificate.not_valid_after_utc)
