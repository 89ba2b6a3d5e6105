"""Reaching customers: consent records, the messages transports deliver, and
what a transport did with one."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from .base import Channel, Purpose, _Out


class Consent(_Out):
    """One consent record: a grant or a withdrawal for a channel and purpose."""

    customer_id: int = Field(description="the customer's id")
    channel: Channel = Field(description="email, sms, phone or wechat")
    purpose: Purpose = Field(description="marketing, surveys or a plugin's purpose")
    granted: bool = Field(description="`True` for a grant, `False` for a withdrawal")
    source: str | None = Field(default=None, description="where the consent was given or withdrawn")
    recorded_at: dt.datetime = Field(
        description="when it was recorded (UTC); the newest record per channel and purpose decides"
    )


class Message(_Out):
    """One message to deliver through the transport hook."""

    channel: Channel = Field(description="email, sms, phone or wechat")
    to: str = Field(description="address: an email address, or a mobile in E.164")
    subject: str | None = Field(default=None, description="subject line (email)")
    body: str = Field(description="the text")
    html: str | None = Field(default=None,
                             description="an HTML alternative of the body (email), if any")
    customer_id: int | None = Field(default=None, description="the customer it is for, if any")
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra headers (e.g. List-Unsubscribe)"
    )


class DeliveryResult(_Out):
    """What a transport did with a message; returned by ``recrm_deliver_message``."""

    transport: str = Field(description="name of the transport that took the message")
    ok: bool = Field(
        default=True, description="whether it was delivered (or accepted for delivery)"
    )
    detail: str | None = Field(default=None, description="the transport's message id or error")
