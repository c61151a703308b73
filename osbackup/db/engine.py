"""The catalogue's SQLAlchemy engine, set up from ``[database]``."""

#: oslo.db's own default of ``[database] mysql_sql_mode``: without a mode
#: set on each connection, oslo.db warns on every process start.
SQL_MODE = 'TRADITIONAL'


def options(conf) -> dict:
    """create_engine() keyword arguments from the ``[database]`` options."""
    db = conf.database
    return {'max_retries': db.max_retries,
            'retry_interval': db.retry_interval,
            'max_pool_size': db.max_pool_size,
            'max_overflow': db.max_overflow,
            'pool_timeout': db.pool_timeout,
            'mysql_sql_mode': db.mysql_sql_mode,
            'mysql_wsrep_sync_wait': db.mysql_wsrep_sync_wait,
            'connection_recycle_time': db.connection_recycle_time,
            'connection_debug': db.connection_debug}


def create(connection: str, **kw):
    """An oslo.db engine; MySQL connections get an SQL mode by default."""
    # Imported here: SQLAlchemy is costly and many commands never connect.
    from oslo_db.sqlalchemy import engines
    kw.setdefault('mysql_sql_mode', SQL_MODE)
    # Enforce foreign keys on SQLite as InnoDB does, so that a catalogue
    # on either refuses the same dangling rows.
    kw.setdefault('sqlite_fk', True)
    return engines.create_engine(connection, **kw)


def reason(exc: Exception) -> str:
    """The driver's own words for an oslo.db error, without SQLAlchemy's."""
    inner = getattr(exc, 'inner_exception', None) or exc
    return str(getattr(inner, 'orig', None) or inner)
