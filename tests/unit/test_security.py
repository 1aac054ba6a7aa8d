"""TLS/SASL settings reach every aiokafka client and Faust the same way; secrets stay secret."""

from __future__ import annotations

import ssl

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from agents.app import faust_credentials
from pipeline.security import KafkaSecurity
from pipeline.settings import SettingsError

SASL_SSL = {
    "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "spread",
    "KAFKA_SASL_PASSWORD": "s3cret-value",
}


def test_default_is_plaintext_everywhere():
    sec = KafkaSecurity.from_env({})
    assert sec.client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(sec) is None


def test_sasl_ssl_reaches_aiokafka_and_faust_identically():
    sec = KafkaSecurity.from_env(SASL_SSL)
    ours = sec.client_kwargs()
    assert ours["security_protocol"] == "SASL_SSL"
    assert ours["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (ours["sasl_plain_username"], ours["sasl_plain_password"]) == ("spread", "s3cret-value")
    assert isinstance(ours["ssl_context"], ssl.SSLContext)
    theirs = credentials_to_aiokafka_auth(faust_credentials(sec))
    assert {k: v for k, v in theirs.items() if k != "ssl_context"} == {
        k: v for k, v in ours.items() if k != "ssl_context"
    }
    assert isinstance(theirs["ssl_context"], ssl.SSLContext)


def test_plain_ssl_and_sasl_plaintext():
    assert KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL"}).client_kwargs().keys() == {
        "security_protocol",
        "ssl_context",
    }
    env = {**SASL_SSL, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": ""}
    kwargs = KafkaSecurity.from_env(env).client_kwargs()
    assert kwargs["sasl_mechanism"] == "PLAIN" and "ssl_context" not in kwargs
    creds = credentials_to_aiokafka_auth(faust_credentials(KafkaSecurity.from_env(env)))
    assert creds["security_protocol"] == "SASL_PLAINTEXT"


def test_the_password_never_shows_in_repr():
    sec = KafkaSecurity.from_env(SASL_SSL)
    assert "s3cret-value" not in repr(sec) and "s3cret-value" not in str(sec)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS'"),
        ({**SASL_SSL, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM='GSSAPI'"),
        ({**SASL_SSL, "KAFKA_SASL_PASSWORD": ""}, "needs KAFKA_SASL_USERNAME and"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nope.pem"}, "no such file"),
    ],
)
def test_bad_settings_are_one_clear_line(env, message):
    with pytest.raises(SettingsError) as err:
        KafkaSecurity.from_env(env)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "s3cret-value" not in str(err.value)
