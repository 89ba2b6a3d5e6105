"""The Alembic environment (``env.py``, ``script.py.mako``) and the core's revisions
(``versions/``, branch ``core``). Run through :mod:`recrm_core.migrating` and ``recrm db``,
never through an ``alembic.ini``; nothing here is imported on a command's hot path."""
