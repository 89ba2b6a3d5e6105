"""The channels plugin's revisions: Alembic branch ``channels`` (see docs/plugins.md)."""
