"""The sales plugin's revisions: Alembic branch ``sales`` (see docs/plugins.md)."""
