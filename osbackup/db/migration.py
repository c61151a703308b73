"""Schema migrations of the catalogue (``osbackup-manage db sync``).

alembic is imported only to migrate: loading it is a quarter of a second
that every osbackup-manage call would pay to check the schema version.
"""

import os
import re

_SCRIPTS = os.path.join(os.path.dirname(__file__), 'migrations')
#: alembic's default, which env.py keeps.
_VERSION_TABLE = 'alembic_version'
_NUMBERED = re.compile(r'^(\d{4})_\w+\.py$')


def _config(connection):
    from alembic import config as alembic_config
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', _SCRIPTS)
    cfg.attributes['connection'] = connection
    return cfg


def upgrade(engine, revision: str = 'head') -> str:
    """Bring the catalogue schema to ``revision``; return the new version."""
    from alembic import command
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)
    return current(engine)


def current(engine) -> str | None:
    """The schema version of the catalogue, None if never synced.

    Read from alembic's own version table, without loading alembic.
    """
    import sqlalchemy as sa
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(_VERSION_TABLE):
            return None
        return connection.execute(sa.text(
            'SELECT version_num FROM %s' % _VERSION_TABLE)).scalar()


def head() -> str:
    """The newest schema version this code knows.

    Migrations form one chain numbered like their files (``0004_x.py`` is
    revision ``0004``); a unit test holds this to alembic's answer.
    """
    return max(m.group(1) for m in map(
        _NUMBERED.match, os.listdir(os.path.join(_SCRIPTS, 'versions'))) if m)
