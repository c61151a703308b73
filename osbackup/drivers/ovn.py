"""OVN: ``ovsdb-client backup`` of the NB and SB databases, and restore.

A backup asks the running ovsdb-server for a consistent copy of each
database (``ovsdb-client backup``, online) and records its schema version.
When the server does not answer, the database file is copied instead (a
standalone file as it is, a clustered one converted with ``ovsdb-tool
cluster-to-standalone``), with a warning: a stopped database does not
change, so the copy is consistent, but it may be older than the cluster.

A restore refuses a backup of another schema version than the running
server's unless forced (``restore create --force``). It loads the copy
with ``ovsdb-client restore`` (Open vSwitch >= 2.15) into the running
server; with the server stopped, it builds a new database file with
``ovsdb-tool`` (``create-cluster`` on the file's own address for a
clustered database, whose other members must then join it anew) and puts
it in place of the old one.
"""

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time

from oslo_log import log as logging

from osbackup import artifact_kinds
from osbackup.definitions import ovn
from osbackup.drivers import base
from osbackup import exception
from osbackup import streams

LOG = logging.getLogger(__name__)

#: (short name, OVSDB database name) of what a backup captures.
DATABASES = (('nb', 'OVN_Northbound'), ('sb', 'OVN_Southbound'))
#: ``ovsdb-tool db-is-clustered`` exits so for a standalone file.
_STANDALONE = 2


class Unreachable(exception.OsbackupError):
    """ovsdb-server does not answer on the configured connection."""


class OVNDriver(base.ServiceDriver, base.CommandRestore):
    """OVN's databases, captured from the running ovsdb-server."""

    definition = ovn.DEFINITION
    name = definition.name

    @property
    def options(self):
        return self.conf[self.name]

    # -- commands ------------------------------------------------------

    def _run(self, argv, stdin=None, what=None, stdout=None) -> bytes:
        """Run a command; its stdout, or a one-line OsbackupError.

        ``stdout``: a file the output goes to instead.
        """
        what = what or shlex.join(argv)
        try:
            proc = subprocess.run(argv, stdin=stdin or subprocess.DEVNULL,
                                  stdout=stdout or subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  timeout=self.options.command_timeout)
        except subprocess.TimeoutExpired:
            raise exception.OsbackupError(
                '%s did not finish within %d s ([ovn] command_timeout)'
                % (what, self.options.command_timeout))
        except OSError as exc:
            raise exception.OsbackupError('%s: %s' % (argv[0], exc))
        if proc.returncode:
            err = proc.stderr.decode('utf-8', 'replace').strip()
            raise exception.OsbackupError('%s exited %d: %s' % (
                what, proc.returncode, err.splitlines()[-1][:500]
                if err else '(no message)'))
        return proc.stdout

    def _client(self, *args) -> list[str]:
        return [self.options.ovsdb_client, '--timeout=%d'
                % self.options.command_timeout] + list(args)

    def _tool(self, *args) -> list[str]:
        return [self.options.ovsdb_tool] + list(args)

    def schema_version(self, connection: str, database: str) -> str:
        """The running server's schema version; raise Unreachable."""
        try:
            out = self._run(self._client('get-schema-version', connection,
                                         database))
        except exception.OsbackupError as exc:
            raise Unreachable('ovsdb-server is not answering on %s for %s: '
                              '%s' % (connection, database, exc.message))
        return out.decode().strip()

    def _clustered(self, path: str) -> bool:
        try:
            subprocess.run(self._tool('db-is-clustered', path), check=True,
                           capture_output=True,
                           timeout=self.options.command_timeout)
        except subprocess.CalledProcessError as exc:
            if exc.returncode == _STANDALONE:
                return False
            raise exception.OsbackupError(
                'ovsdb-tool db-is-clustered %s failed: %s' % (
                    path, exc.stderr.decode('utf-8', 'replace').strip()))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise exception.OsbackupError('ovsdb-tool: %s' % exc)
        return True

    # -- the interface -------------------------------------------------

    def targets(self):
        """(short name, database, connection, db file) of each database."""
        out = []
        for short, database in DATABASES:
            connection = self.options['%s_connection' % short]
            if connection:
                out.append((short, database, connection,
                            self.path(self.options['%s_db_file' % short])))
        return out

    def is_present(self) -> bool:
        """ovsdb-client installed and an OVN database served or kept here.

        A database file, an existing unix socket or a tcp:/ssl: connection
        (configured on purpose: the defaults are unix sockets). A compute
        node with only ovn-controller has none of them.
        """
        if not shutil.which(self.options.ovsdb_client):
            return False
        for _short, _database, connection, path in self.targets():
            if os.path.isfile(path) or not connection.startswith('unix:'):
                return True
            if os.path.exists(connection[len('unix:'):]):
                return True
        return False

    def units(self) -> list[str]:
        return list(self.definition.units)

    def describe(self) -> dict:
        return {'databases': [database for _s, database, _c, _f
                              in self.targets()]}

    def backup(self, ctx: base.TaskContext,
               only: str | None = None) -> list[base.Artifact]:
        """One artifact per database (``only``: the one of that name)."""
        artifacts = []
        try:
            for short, database, connection, path in self.targets():
                name = 'ovn-%s' % short
                if only is None or only == name:
                    artifacts.append(self._backup_one(
                        ctx, name, database, connection, path))
        except BaseException:
            for artifact in artifacts:
                ctx.storage.delete(artifact.location)
            raise
        return artifacts

    def _backup_one(self, ctx, name, database, connection, path):
        meta = {'database': database, 'connection': connection}
        try:
            meta['schema_version'] = self.schema_version(connection,
                                                         database)
        except Unreachable as exc:
            if not os.path.isfile(path):
                raise exception.OsbackupError(
                    '%s; no database file at %s to copy instead ([ovn] '
                    '%s_db_file)' % (exc.message, path, name[4:]))
            return self._copy_stopped(ctx, name, database, path, meta, exc)
        with tempfile.TemporaryDirectory(prefix='osbackup-ovn-') as tmp:
            copy = os.path.join(tmp, 'backup.db')
            with open(copy, 'wb') as out:
                self._run(self._client('backup', connection, database),
                          stdout=out, what='ovsdb-client backup %s %s'
                          % (connection, database))
            meta['source'] = 'ovsdb-client backup'
            return self._store(ctx, name, copy, meta)

    def _copy_stopped(self, ctx, name, database, path, meta, why):
        """A copy of the file of a database no server serves right now."""
        with tempfile.TemporaryDirectory(prefix='osbackup-ovn-') as tmp:
            copy = os.path.join(tmp, 'backup.db')
            if self._clustered(path):
                self._run(self._tool('cluster-to-standalone', copy, path))
                meta['source'] = 'ovsdb-tool cluster-to-standalone'
            else:
                shutil.copyfile(path, copy)
                meta['source'] = 'database file'
            meta['schema_version'] = self._run(self._tool(
                'db-version', copy)).decode().strip()
            message = ('%s; copied the database file %s instead (a stopped '
                       'database: check it is the latest)'
                       % (why.message, path))
            LOG.warning('%s', message)
            ctx.warnings.append(message)
            return self._store(ctx, name, copy, meta)

    def _store(self, ctx, name, path, meta) -> base.Artifact:
        """Compress the file at ``path`` into the artifact ``name``."""
        key = ctx.key(name, '.db.zst')
        writer = ctx.storage.open_writer(key)
        with writer:
            hashing = streams.HashingWriter(writer)
            size = 0
            with open(path, 'rb') as src, streams.compressor(
                    hashing, level=self.conf.storage.compression_level,
                    threads=self.conf.storage.compression_threads) as comp:
                for data in iter(lambda: src.read(streams.CHUNK), b''):
                    comp.write(data)
                    size += len(data)
                    ctx.progress(len(data), 0)
            location = writer.commit()
        ctx.progress(0, 1)
        meta['uncompressed_size'] = size
        return base.Artifact(name=name, kind=artifact_kinds.COMMAND,
                             location=location, size=hashing.size,
                             sha256=hashing.sha256, key=key, meta=meta)

    # -- restore -------------------------------------------------------

    def _target(self, artifact: dict):
        for short, database, connection, path in self.targets():
            if artifact['name'] == 'ovn-%s' % short:
                return database, connection, path
        raise exception.RestoreFailed(
            'No OVN database for artifact %s here ([ovn] %s_connection '
            'is empty)' % (artifact['name'], artifact['name'][4:]))

    @contextlib.contextmanager
    def _fetched(self, ctx, artifact: dict):
        """The artifact as a database file, its sha256 and format checked."""
        with tempfile.TemporaryDirectory(prefix='osbackup-ovn-') as tmp:
            path = os.path.join(tmp, 'restore.db')
            with open(path, 'wb') as out:
                streams.write_checked(
                    out, ctx.storage.open_reader(artifact['location']),
                    artifact['sha256'],
                    lambda actual: exception.ArtifactCorrupt(
                        'Artifact %s has sha256 %s, expected %s; nothing '
                        'was restored' % (artifact['location'], actual,
                                          artifact['sha256'])),
                    ctx.progress)
            name = self._run(self._tool('db-name', path)).decode().strip()
            database = (artifact.get('meta') or {}).get('database')
            if database and name != database:
                raise exception.ArtifactCorrupt(
                    'Artifact %s holds database %s, expected %s'
                    % (artifact['location'], name, database))
            yield path, self._run(self._tool('db-version', path)).decode() \
                .strip()

    def _check_schema(self, artifact, database, connection, version, force):
        """Refuse another schema version than the running server's."""
        try:
            live = self.schema_version(connection, database)
        except Unreachable:
            return None
        if live != version and not force:
            raise exception.RestoreFailed(
                '%s: the backup has schema version %s, the running '
                'ovsdb-server %s; refused (restore create --force loads it '
                'anyway)' % (database, version, live))
        return live

    def check_artifact(self, ctx, artifact: dict, force: bool) -> None:
        database, connection, _path = self._target(artifact)
        with self._fetched(ctx, artifact) as (_copy, version):
            self._check_schema(artifact, database, connection, version,
                               force)

    def save_current(self, ctx, artifact: dict) -> base.Artifact | None:
        """A copy of the database the restore replaces, or None."""
        _database, _connection, path = self._target(artifact)
        try:
            (saved,) = self.backup(ctx, only=artifact['name'])
        except exception.OsbackupError:
            if os.path.exists(path):
                raise
            return None     # nothing there to replace
        return saved

    def restore_artifact(self, ctx, artifact: dict, force: bool) -> None:
        database, connection, path = self._target(artifact)
        with self._fetched(ctx, artifact) as (copy, version):
            live = self._check_schema(artifact, database, connection,
                                      version, force)
            if live is not None:
                argv = self._client(*(['--force'] if force else []))
                with open(copy, 'rb') as stdin:
                    self._run(argv + ['restore', connection], stdin=stdin,
                              what='ovsdb-client restore %s' % connection)
                return
            self._replace_file(ctx, database, copy, path)

    def _replace_file(self, ctx, database, copy, path):
        """No server answers: a new database file in place of the old."""
        new = '%s.osbackup-new' % path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(new)
        clustered = os.path.exists(path) and self._clustered(path)
        if clustered:
            address = self._run(self._tool('db-local-address', path)) \
                .decode().strip()
            self._run(self._tool('create-cluster', new, copy, address))
            message = ('%s was clustered and no ovsdb-server answered: a new '
                       'one-member cluster was built from the backup at %s; '
                       'the other members must join it anew (ovsdb-tool '
                       'join-cluster)' % (database, address))
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copyfile(copy, new)
            message = ('No ovsdb-server answered for %s: its database file '
                       '%s was replaced (start ovsdb-server on it)'
                       % (database, path))
        if os.path.exists(path):
            os.rename(path, '%s.orig-%s' % (path,
                                            time.strftime('%Y%m%dT%H%M%S')))
        os.rename(new, path)
        LOG.warning('%s', message)
        ctx.warnings.append(message)
