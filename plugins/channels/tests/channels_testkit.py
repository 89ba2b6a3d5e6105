"""Shared helpers of the channels tests (a plain module, unique name across test dirs)."""

from __future__ import annotations

from recrm_channels import Channels, service

from recrm_core import CRM

PROJECT = "XL2"


def setup_agencies(crm: CRM) -> Channels:
    """Agencies A (agent a1, a2) and B (agent b1), and project XL2."""
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    channels = service(crm)
    channels.add_agency("A", "链家 A", contact="Mr Li")
    channels.add_agency("B", "我爱我家 B")
    channels.add_agent("a1", "Agent A1", "A")
    channels.add_agent("a2", "Agent A2", "A")
    channels.add_agent("b1", "Agent B1", "B")
    return channels
