"""[database] options: oslo.db's, with an all-in-one SQLite default."""

from oslo_config import cfg
from oslo_db import options as db_options

DEFAULT_CONNECTION = 'sqlite:///$state_path/osbackup.sqlite'


def register_opts(conf):
    # Changing the option objects (not only this ConfigOpts) makes the
    # generated sample config show osbackup's default too.
    cfg.set_defaults(db_options.database_opts,
                     connection=DEFAULT_CONNECTION)
    db_options.set_defaults(conf)


def list_opts():
    # The [database] group is listed by the oslo.db namespace of the
    # generator; osbackup only changes its default.
    return {}
