"""The survey plugin's revisions: Alembic branch ``survey`` (see docs/plugins.md)."""
