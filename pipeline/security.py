"""How every Kafka client of the project authenticates: TLS and SASL from the environment.

Read from environment variables, for every command alike (worker, replay, and whatever else
talks to Kafka), so a password never appears in a command line (``ps`` shows those):

``KAFKA_SECURITY_PROTOCOL``  ``PLAINTEXT`` (default), ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``
``KAFKA_SASL_MECHANISM``     ``PLAIN`` (default with SASL), ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``
``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``
``KAFKA_SSL_CAFILE``         CA bundle to verify the brokers (default: the system's)
``KAFKA_SSL_CERTFILE``, ``KAFKA_SSL_KEYFILE``  a client certificate, for mutual TLS

The password is kept out of ``repr`` (so out of logs and tracebacks) and never exported.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pipeline.settings import SettingsError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> KafkaSecurity:
        def get(name: str) -> str | None:
            return environ.get(name) or None

        protocol = (get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        mechanism = (get("KAFKA_SASL_MECHANISM") or "PLAIN").upper()
        if protocol not in PROTOCOLS:
            raise SettingsError(
                f"KAFKA_SECURITY_PROTOCOL={protocol!r}: expected one of {', '.join(PROTOCOLS)}"
            )
        if mechanism not in MECHANISMS:
            raise SettingsError(
                f"KAFKA_SASL_MECHANISM={mechanism!r}: expected one of {', '.join(MECHANISMS)}"
            )
        security = cls(
            protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username=get("KAFKA_SASL_USERNAME"),
            sasl_password=get("KAFKA_SASL_PASSWORD"),
            ssl_cafile=get("KAFKA_SSL_CAFILE"),
            ssl_certfile=get("KAFKA_SSL_CERTFILE"),
            ssl_keyfile=get("KAFKA_SSL_KEYFILE"),
        )
        if security.uses_sasl and not (security.sasl_username and security.sasl_password):
            raise SettingsError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD"
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(security, name)
            if path is not None and not os.path.isfile(path):
                raise SettingsError(f"KAFKA_{name.upper()}={path!r}: no such file")
        return security

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


@cache
def from_environment() -> KafkaSecurity:
    """The process's settings, read once."""
    return KafkaSecurity.from_env()


def client_kwargs() -> dict[str, Any]:
    return from_environment().client_kwargs()
