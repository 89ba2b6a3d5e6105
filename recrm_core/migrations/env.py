"""The Alembic environment: everything it needs comes from ``recrm_core.migrating``."""

from alembic import context

from recrm_core.migrating import run_environment

run_environment(context)
