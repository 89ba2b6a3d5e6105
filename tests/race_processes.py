"""Workers in separate processes released together, for the multi-process race tests:
``recrm_core.testing.run_together``, the harness plugin authors use too."""

from __future__ import annotations

from recrm_core.testing import run_together

__all__ = ["run_together"]
