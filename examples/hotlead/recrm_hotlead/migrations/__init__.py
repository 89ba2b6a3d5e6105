"""The tutorial plugin's revisions: Alembic branch ``hotlead`` (see docs/plugins.md)."""
