"""The newsletter plugin's revisions: Alembic branch ``newsletter`` (see docs/plugins.md)."""
