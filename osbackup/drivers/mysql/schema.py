"""A database's schema version: the rows of its ``alembic_version`` table.

A dump records its database's revision (meta ``schema_version``: the list
of rows, or None without the table). A restore refuses, in its prepare
phase, to load a dump into a database whose live revision is newer (the
service's packages were upgraded since, and its code expects the newer
schema), and any other difference when the service's migrations cannot
tell which is newer; ``restore create --force`` loads it anyway.
"""

from osbackup import definitions
from osbackup.drivers.mysql import spawn
from osbackup import exception
from osbackup import schema_versions

TABLE = 'alembic_version'


class SchemaMixin:
    """Read alembic revisions; check a dump's against the live one's."""

    def schema_revisions(self, databases: list[str]) -> dict:
        """{database: sorted revisions, or None without the table}."""
        if not databases:
            return {}
        having = self._query(
            "SELECT table_schema FROM information_schema.tables WHERE "
            "table_name = '%s' AND table_schema IN (%s)"
            % (TABLE, ', '.join(spawn.sql_literal(db) for db in databases)))
        out = {db: None for db in databases}
        if having:
            rows = self._query(' UNION ALL '.join(
                'SELECT %s, version_num FROM %s.%s' % (
                    spawn.sql_literal(db), spawn.sql_name(db), TABLE)
                for db in having))
            for db in having:
                out[db] = []
            for row in rows:
                db, _sep, revision = row.partition('\t')
                out[db].append(revision)
            for db in having:
                out[db].sort()
        return out

    def migration_graph(self, owner: str | None) -> dict:
        """The migrations of the service ``owner`` found on this node."""
        definition = definitions.builtin().get(owner) if owner else None
        if definition is None:
            return {}
        return schema_versions.read_graph(
            [self.path(d) for d in definition.migrations])

    def check_schema(self, database: str, artifact: dict,
                     owner: str | None, force: bool) -> None:
        """Raise RestoreFailed unless the dump may replace the database.

        Nothing to compare (no revision in the dump, the database or its
        table absent) passes; so does a dump newer than the live database.
        """
        dumped = (artifact.get('meta') or {}).get('schema_version')
        if not dumped or force or \
                database not in self.list_databases():
            return
        live = self.schema_revisions([database])[database]
        if not live:
            return
        order = schema_versions.compare(self.migration_graph(owner),
                                        dumped, live)
        if order in (schema_versions.SAME, schema_versions.OLDER):
            return
        raise exception.RestoreFailed(
            '%s: the dump has schema revision %s, the live database %s%s; '
            'refused (restore create --force loads it anyway)' % (
                database, ','.join(dumped), ','.join(live),
                ', newer' if order == schema_versions.NEWER else
                ': cannot tell which is newer (%s migrations not found '
                'or not in them)' % (owner or 'no service\'s')))
