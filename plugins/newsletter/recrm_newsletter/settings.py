"""``[newsletter]`` in ``recrm.toml``: transports, the SMS signature and refusal text,
the frequency cap, quiet hours and the sending pace."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recrm_core import CRM

#: the plugin's name: its settings section, table prefix and consent purpose
NAME = "newsletter"
#: what a URL path segment holds as itself (RFC 3986 unreserved): the inbound secret
#: is one, in the callback URL the SMS provider is given
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


class NewsletterSettings(BaseModel):
    """The ``[newsletter]`` section. Secrets (the SMTP password, the SMS provider's
    token) may come from the environment instead: ``RECRM_SMTP_PASSWORD``,
    ``RECRM_SMS_TOKEN``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email_transport: Literal["console", "smtp", "file"] = Field(
        default="console",
        description="how email leaves: the core's console, SMTP, or .eml files in "
        "`file_directory`")
    sms_transport: Literal["console", "http", "file"] = Field(
        default="console",
        description="how SMS leaves: the core's console, a JSON POST to `sms_url`, or "
        "files in `file_directory`")
    smtp_host: str = Field(default="localhost", description="SMTP server")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port")
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        default="none", description="plain, STARTTLS, or SSL from the first byte")
    smtp_ca_file: Path | None = Field(
        default=None, description="CA certificates to verify the server with (a private "
        "CA); unset: the system's")
    smtp_user: str | None = Field(default=None, description="SMTP login, if the server wants one")
    smtp_password: str | None = Field(
        default=None, description="SMTP password (or RECRM_SMTP_PASSWORD)")
    smtp_timeout: float = Field(default=30, gt=0, le=600, description="seconds per SMTP step")
    from_address: str = Field(default="newsletter@example.com",
                              description="the From of every email")
    from_name: str = Field(default="星珑地产", description="the display name of the From")
    file_directory: Path = Field(default=Path("newsletter-out"),
                                 description="where the file transport writes")
    sms_url: str | None = Field(default=None,
                                description="the SMS provider's URL (the http transport)")
    sms_token: str | None = Field(
        default=None, description="bearer token for the provider (or RECRM_SMS_TOKEN)")
    sms_signature: str = Field(default="【星珑地产】",
                               description="the sender signature put before every SMS")
    sms_refusal: str = Field(default="回T退订",
                             description="the refusal text every SMS must end with")
    inbound_secret: str | None = Field(
        default=None, description="the shared secret in the SMS provider's reply callback "
        "URL (/nl/sms/{secret}): 16 to 100 letters, digits, '-', '_', '.' or '~'; unset: "
        "the route answers 404")
    max_messages_per_week: int = Field(
        default=3, ge=0, le=1000,
        description="per customer and channel over the last 7 days; 0: no cap")
    quiet_hours: tuple[str, str] | None = Field(
        default=("21:00", "08:00"),
        description="no SMS between these local times (the business time zone)")
    rate_limit: float = Field(default=0, ge=0, description="messages/s per sender; 0: no limit")
    batch_size: int = Field(default=200, ge=1, le=10_000,
                            description="recipients a sender claims at once")
    lease_seconds: int = Field(
        default=300, ge=5, le=86_400,
        description="a claimed batch not finished in this time is taken by the next run")

    @field_validator("sms_refusal")
    @classmethod
    def _refusal(cls, value: str) -> str:
        # MIIT: every marketing SMS must say how to refuse more; an empty refusal text
        # would let SMS go out without one
        if not value.strip():
            raise ValueError("must not be empty: every marketing SMS must end with how to "
                             "refuse more (e.g. 回T退订)")
        return value.strip()

    @field_validator("inbound_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        # The one thing between the public route and withdrawing anyone's consent: the
        # length a webhook's shared secret must have (the core's rule), in characters
        # a URL carries as they are.
        from recrm_core.webhooks.secret_store import MAX_LENGTH, MIN_LENGTH

        if value is not None and not (MIN_LENGTH <= len(value) <= MAX_LENGTH
                                      and _URL_SAFE.fullmatch(value)):
            raise ValueError(
                f"must be {MIN_LENGTH} to {MAX_LENGTH} letters, digits, '-', '_', '.' or"
                " '~' (it is part of the callback URL); make one with python -c \"import"
                " secrets; print(secrets.token_urlsafe(24))\"")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _times(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None:
            for text in value:
                dt.time.fromisoformat(text)  # ValueError: the core reports the field
        return value

    def quiet_window(self) -> tuple[dt.time, dt.time] | None:
        if self.quiet_hours is None:
            return None
        start, end = self.quiet_hours
        return dt.time.fromisoformat(start), dt.time.fromisoformat(end)


def settings(crm: CRM) -> NewsletterSettings:
    """The CRM's ``[newsletter]`` settings."""
    found: NewsletterSettings = crm.settings_for(NAME)
    return found
