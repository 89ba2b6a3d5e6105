"""Hook markers and specifications: the API plugins are written against.

Plugins decorate their implementations with :data:`hookimpl`; the specifications
live in :mod:`recrm_core.hooks.specs`.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "recrm"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
