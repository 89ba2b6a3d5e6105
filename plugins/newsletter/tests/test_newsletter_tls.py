"""SMTP over STARTTLS and over SSL from the first byte, against a local server with a
certificate of a throwaway CA (``smtp_ca_file``): the message arrives, verified."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from newsletter_testkit import HTML, SEGMENT, Inbox, add_customers, free_port
from recrm_newsletter import Sender, service

from recrm_core import CRM

CrmFactory = Callable[..., CRM]


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA): (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_over_tls(crm_factory: CrmFactory, tmp_path: Path, security: str) -> None:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    if security == "starttls":
        controller = Controller(inbox, hostname="127.0.0.1", port=port,
                                tls_context=context, require_starttls=True)
    else:
        controller = Controller(inbox, hostname="127.0.0.1", port=port,
                                ssl_context=context)
    controller.start()
    try:
        crm = crm_factory(plugins=["newsletter"], console_stream=io.StringIO(), settings={
            "newsletter": {"email_transport": "smtp", "smtp_host": "127.0.0.1",
                           "smtp_port": port, "smtp_security": security,
                           "smtp_ca_file": str(cert)}})
        add_customers(crm, 2)
        news = service(crm)
        news.save_segment("p", SEGMENT)
        news.create_campaign("launch", channel="email", segment="p", subject="开盘",
                             html=HTML)
        news.schedule("launch")
        assert Sender(crm).run().sent == 2
        assert sorted(r[0] for r in inbox.rcpt) == ["owner0@example.com",
                                                    "owner1@example.com"]
    finally:
        controller.stop()


def test_an_unverified_server_fails_the_message_not_the_send(
        crm_factory: CrmFactory, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    try:
        crm = crm_factory(plugins=["newsletter"], settings={"newsletter": {
            "email_transport": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port,
            "smtp_security": "ssl"}})  # no smtp_ca_file: the system's CAs refuse it
        add_customers(crm, 1)
        news = service(crm)
        news.save_segment("p", SEGMENT)
        news.create_campaign("launch", channel="email", segment="p", subject="s", html=HTML)
        news.schedule("launch")
        result = Sender(crm).run()
        assert (result.sent, result.failed) == (0, 1) and inbox.raw == []
        assert news.report("launch").failed == 1
    finally:
        controller.stop()
