"""The plugin's tables, declared on ``recrm_core.Base`` and prefixed ``newsletter_``.

No table holds an address in clear: a recipient row names the customer, and the
address is read from the customer when the message is built; a suppression or a
bounce holds the address's keyed hash only, so it outlives an erasure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recrm_core import Base, UTCDateTime


class SegmentRow(Base):
    """A saved segment: a name for one of the core's JSON segment definitions."""

    __tablename__ = "newsletter_segments"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ListRow(Base):
    """A static list, imported from a CSV or XLSX file."""

    __tablename__ = "newsletter_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ListMemberRow(Base):
    """One customer on a static list."""

    __tablename__ = "newsletter_list_members"

    list_id: Mapped[int] = mapped_column(ForeignKey("newsletter_lists.id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True,
                                             index=True)


class PublicationRow(Base):
    """A periodical (the owners' magazine): its issues are sends."""

    __tablename__ = "newsletter_publications"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SendRow(Base):
    """A campaign, or one issue of a publication: content, audience and state
    (draft → scheduled → sending → sent, or paused, cancelled)."""

    __tablename__ = "newsletter_sends"
    __table_args__ = (UniqueConstraint("publication", "issue_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # campaign or issue
    publication: Mapped[str | None] = mapped_column(
        ForeignKey("newsletter_publications.code"))
    issue_number: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(32))
    segment: Mapped[str | None] = mapped_column(String(64))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("newsletter_lists.id"))
    subject: Mapped[str | None] = mapped_column(String(300))
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), index=True)
    #: why a sending send is not moving (quiet hours), shown by status
    note: Mapped[str | None] = mapped_column(String(200))
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: the outbox is written up to this customer id (resumable), and then complete
    audience_after: Mapped[int] = mapped_column(Integer, default=0)
    audience_done: Mapped[bool] = mapped_column(default=False)


class RecipientRow(Base):
    """The outbox: one row per (send, customer, channel), written before anything
    leaves, claimed with a lease before its message is handed to a transport."""

    __tablename__ = "newsletter_recipients"
    __table_args__ = (
        UniqueConstraint("send_id", "customer_id", "channel"),
        Index("ix_newsletter_recipients_send_id_state", "send_id", "state"),
        Index("ix_newsletter_recipients_customer_id_channel_sent_at",
              "customer_id", "channel", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("newsletter_sends.id"))
    #: None once the person was erased (the row stays for the send's counts)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(8))
    #: pending, claimed, sent, failed or skipped
    state: Mapped[str] = mapped_column(String(8))
    #: why skipped or failed (consent_withdrawn, suppressed, frequency_cap, ...)
    reason: Mapped[str | None] = mapped_column(String(32))
    lease_owner: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(200))
    transport: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: set when a bounce or an unsubscription is traced back to this message
    bounced: Mapped[bool] = mapped_column(default=False)


class SuppressionRow(Base):
    """An address nothing is sent to on a channel: its keyed hash, why and when."""

    __tablename__ = "newsletter_suppressions"
    __table_args__ = (UniqueConstraint("channel", "address_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    address_hash: Mapped[str] = mapped_column(String(40))
    #: hard_bounce, complaint, soft_bounces or manual
    reason: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class BounceRow(Base):
    """One bounce or complaint report, by the address's keyed hash; a report read
    again (the same ``report_key``) is not recorded twice."""

    __tablename__ = "newsletter_bounces"
    __table_args__ = (Index("ix_newsletter_bounces_channel_address_hash_at",
                            "channel", "address_hash", "at"),
                      UniqueConstraint("channel", "address_hash", "report_key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    address_hash: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))  # hard, soft or complaint
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: the report's own identity (a digest of its message id, or of the report itself,
    #: with the kind); None for a bounce recorded without one (newsletter_0002)
    report_key: Mapped[str | None] = mapped_column(String(64))
