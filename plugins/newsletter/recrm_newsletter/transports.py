"""Transports behind the core's ``recrm_deliver_message`` hook: SMTP (standard
library), ``.eml``/``.json`` files, and an HTTP SMS provider (a JSON POST). The
console is the core's. Whoever sends through ``crm.send_message`` while the plugin is
enabled (the survey plugin's invitations too) uses them.

A message's stable id travels with it: ``Message-ID`` for email, the
``Idempotency-Key`` header for SMS (sent to the provider, and the file name).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import smtplib
import ssl
import urllib.error
import urllib.request
from email.header import Header
from email.headerregistry import Address
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, make_msgid
from pathlib import Path

from recrm_core import CRM, DeliveryResult, Message

from .settings import NewsletterSettings, settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: headers a caller may not set through ``Message.headers`` (the transport writes them)
_OWN = {"from", "to", "subject", "content-type", "content-transfer-encoding", "mime-version"}


def deliver(crm: CRM, message: Message) -> DeliveryResult | None:
    conf = settings(crm)
    if message.channel == "email":
        if conf.email_transport == "smtp":
            return _smtp(conf, message)
        if conf.email_transport == "file":
            return write_file(conf, conf.file_directory, message)
    elif message.channel == "sms":
        if conf.sms_transport == "http":
            return _http_sms(conf, message)
        if conf.sms_transport == "file":
            return write_file(conf, conf.file_directory, message)
    return None  # the console (the core's) or another plugin's transport


def email_bytes(conf: NewsletterSettings, message: Message) -> bytes:
    """The message as RFC 5322 bytes (UTF-8 subjects and bodies MIME-encoded)."""
    return email_message(conf, message).as_bytes()


def email_message(conf: NewsletterSettings, message: Message) -> MIMEBase:
    """The message as MIME parts: UTF-8 bodies base64-encoded, non-ASCII headers RFC
    2047-encoded (the compat32 classes: several times faster than ``EmailMessage``'s
    header registry, which matters at 100k messages)."""
    text = MIMEText(message.body, "plain", "utf-8")
    mail: MIMEBase
    if message.html:
        mail = MIMEMultipart("alternative")
        mail.attach(text)
        mail.attach(MIMEText(message.html, "html", "utf-8"))
    else:
        mail = text
    mail["From"] = formataddr((str(Header(conf.from_name, "utf-8")), conf.from_address))
    mail["To"] = message.to
    mail["Subject"] = Header(message.subject or "", "utf-8").encode()
    for name, value in message.headers.items():
        if name.lower() not in _OWN:
            mail[name] = value
    if "Message-ID" not in mail:
        mail["Message-ID"] = make_msgid(domain=_domain(conf.from_address))
    return mail


def _domain(address: str) -> str:
    try:
        return Address(addr_spec=address).domain or "localhost"
    except (ValueError, IndexError):
        return "localhost"


def _smtp(conf: NewsletterSettings, message: Message) -> DeliveryResult:
    mail = email_message(conf, message)
    password = conf.smtp_password or os.environ.get("RECRM_SMTP_PASSWORD")
    server: smtplib.SMTP
    try:
        if conf.smtp_security == "ssl":
            server = smtplib.SMTP_SSL(conf.smtp_host, conf.smtp_port, timeout=conf.smtp_timeout,
                                      context=_tls(conf))
        else:
            server = smtplib.SMTP(conf.smtp_host, conf.smtp_port, timeout=conf.smtp_timeout)
        with server:
            if conf.smtp_security == "starttls":
                server.starttls(context=_tls(conf))
            if conf.smtp_user:
                server.login(conf.smtp_user, password or "")
            refused = server.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        return DeliveryResult(transport="smtp", ok=False, detail=f"{type(exc).__name__}: {exc}")
    if refused:
        return DeliveryResult(transport="smtp", ok=False, detail=f"refused: {sorted(refused)}")
    return DeliveryResult(transport="smtp", ok=True, detail=str(mail["Message-ID"]))


def _tls(conf: NewsletterSettings) -> ssl.SSLContext:
    """Verifying TLS (hostname and chain), with ``smtp_ca_file`` when set."""
    cafile = str(conf.smtp_ca_file) if conf.smtp_ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _stable_name(message: Message) -> str:
    key = message.headers.get("Message-ID") or message.headers.get("Idempotency-Key")
    return file_stem(key or make_msgid())


def file_stem(key: str) -> str:
    """The file transport's name (without suffix) of the message whose stable id is
    ``key``: how a privacy request finds an outbox row's file."""
    return _UNSAFE.sub("_", key.strip("<>"))[:150]


#: the suffixes of the file transport's messages (email, SMS)
FILE_SUFFIXES = (".eml", ".json")


def read_file(path: Path) -> dict[str, str]:
    """What a file of the file transport says, decoded (``to``, ``subject``, ``text``:
    its bodies, with the other headers): an ``.eml`` keeps its bodies base64-encoded
    and its non-ASCII headers RFC 2047-encoded, so its bytes never show a name."""
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            payload = json.loads(data.decode("utf-8", "replace"))
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return {"to": "", "subject": "", "text": data.decode("utf-8", "replace")}
        return {"to": str(payload.get("to") or ""), "subject": "",
                "text": str(payload.get("text") or "")}
    mail = email.message_from_bytes(data, policy=email.policy.default)
    bodies = []
    for part in mail.walk():
        if part.get_content_maintype() == "text":
            try:
                bodies.append(str(part.get_content()))
            except (LookupError, ValueError):
                bodies.append(str(part.get_payload()))
    headers = "\n".join(f"{name}: {value}" for name, value in mail.items())
    return {"to": str(mail.get("To") or ""), "subject": str(mail.get("Subject") or ""),
            "text": "\n".join([headers, *bodies])}


def write_file(conf: NewsletterSettings, directory: Path, message: Message) -> DeliveryResult:
    """The file transport: one file per message (``.eml`` for email, ``.json`` for SMS)
    in ``directory``, named by its stable id: a resend rewrites the same file."""
    if message.channel == "email":
        suffix, data = ".eml", email_bytes(conf, message)
    else:
        suffix, data = ".json", _sms_json(message)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_stable_name(message)}{suffix}"
    temp = path.with_suffix(suffix + ".tmp")
    temp.write_bytes(data)
    temp.replace(path)
    return DeliveryResult(transport="file", ok=True, detail=path.name)


def _sms_json(message: Message) -> bytes:
    payload = {"to": message.to, "text": message.body,
               "idempotency_key": message.headers.get("Idempotency-Key")}
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _http_sms(conf: NewsletterSettings, message: Message) -> DeliveryResult:
    """A JSON POST ``{"to", "text", "idempotency_key"}`` to ``sms_url`` (as listmonk's
    messengers); any 2xx is accepted. The key also goes as ``Idempotency-Key``."""
    if not conf.sms_url:
        return DeliveryResult(transport="http_sms", ok=False, detail="sms_url is not set")
    headers = {"Content-Type": "application/json; charset=utf-8"}
    key = message.headers.get("Idempotency-Key")
    if key:
        headers["Idempotency-Key"] = key
    token = conf.sms_token or os.environ.get("RECRM_SMS_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(conf.sms_url, data=_sms_json(message), headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=conf.smtp_timeout) as response:
            answer = response.read(2000).decode("utf-8", "replace")
            return DeliveryResult(transport="http_sms", ok=True, detail=answer[:300] or None)
    except urllib.error.HTTPError as exc:
        return DeliveryResult(transport="http_sms", ok=False, detail=f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        return DeliveryResult(transport="http_sms", ok=False, detail=f"{type(exc).__name__}")
