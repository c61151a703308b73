"""Schema migrations of the catalogue (``osbackup-manage db sync``)."""

import os

from alembic import command
from alembic import config as alembic_config
from alembic import migration
from alembic import script

_SCRIPTS = os.path.join(os.path.dirname(__file__), 'migrations')


def _config(connection):
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', _SCRIPTS)
    cfg.attributes['connection'] = connection
    return cfg


def upgrade(engine, revision: str = 'head') -> str:
    """Bring the catalogue schema to ``revision``; return the new version."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)
    return current(engine)


def current(engine) -> str | None:
    """The schema version of the catalogue, None if never synced."""
    with engine.connect() as connection:
        return migration.MigrationContext.configure(
            connection).get_current_revision()


def head() -> str:
    """The newest schema version this code knows."""
    return script.ScriptDirectory(_SCRIPTS).get_current_head()
