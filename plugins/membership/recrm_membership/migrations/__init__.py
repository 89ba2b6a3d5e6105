"""The membership plugin's revisions: Alembic branch ``membership`` (see docs/plugins.md)."""
