from __future__ import annotations

import ssl

import certifi

from sidecar.sources.kafka import client_options, make_producer
from tests.unit.worker.fakes import pipeline


def test_plaintext_defaults() -> None:
    options = client_options(pipeline().kafka)
    assert options == {"bootstrap_servers": ["127.0.0.1:1"], "security_protocol": "PLAINTEXT"}


def test_sasl_scram_over_tls() -> None:
    config = pipeline(
        source__kafka__security={
            "protocol": "SASL_SSL",
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": "svc", "password": "s3cret"},
            "tls": {"ca_file": certifi.where(), "check_hostname": False},
        },
        source__kafka__client_id="sidecar-1",
    )
    options = client_options(config.kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["client_id"] == "sidecar-1"
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "svc",
        "s3cret",
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname is False
    assert context.verify_mode is ssl.CERT_REQUIRED


def test_password_is_not_shown_in_the_config_repr() -> None:
    config = pipeline(
        source__kafka__security={
            "protocol": "SASL_PLAINTEXT",
            "sasl": {"username": "u", "password": "hidden"},
        }
    )
    assert "hidden" not in repr(config)


async def test_dead_letter_producer_fits_the_largest_accepted_message() -> None:
    producer = make_producer(pipeline(source__kafka__max_message_bytes=4 * 1024 * 1024).kafka)
    assert producer._max_request_size >= 4 * 1024 * 1024
