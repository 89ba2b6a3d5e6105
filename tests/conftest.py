"""Core test configuration; the fixtures come from ``recrm_core.testing`` (pytest11)."""
