"""RabbitMQ: ``export_definitions`` as an artifact, ``import_definitions``
to restore it."""

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile

from osbackup import artifact_kinds
from osbackup.definitions import rabbitmq
from osbackup.drivers import base
from osbackup import exception

ARTIFACT = 'rabbitmq-definitions'


class RabbitMQDriver(base.ServiceDriver, base.CommandRestore):
    """The broker's definitions, exported while it serves."""

    definition = rabbitmq.DEFINITION
    name = definition.name

    @property
    def options(self):
        return self.conf[self.name]

    def _ctl(self, *args: str) -> subprocess.CompletedProcess:
        argv = shlex.split(self.options.ctl_command) + list(args)
        try:
            proc = subprocess.run(argv, capture_output=True,
                                  timeout=self.options.command_timeout)
        except subprocess.TimeoutExpired:
            raise exception.OsbackupError(
                '%s did not finish within %d s ([rabbitmq] '
                'command_timeout)' % (shlex.join(argv),
                                      self.options.command_timeout))
        except OSError as exc:
            raise exception.OsbackupError('%s: %s' % (argv[0], exc))
        if proc.returncode:
            err = proc.stderr.decode('utf-8', 'replace').strip()
            raise exception.OsbackupError('%s exited %d: %s' % (
                shlex.join(argv), proc.returncode, err[-500:]))
        return proc

    def is_present(self) -> bool:
        """A broker's state directory here and its ctl_command installed."""
        argv = shlex.split(self.options.ctl_command)
        return (bool(argv) and shutil.which(argv[0]) is not None and
                any(os.path.isdir(self.path(m))
                    for m in self.definition.markers))

    def units(self) -> list[str]:
        return list(self.definition.units)

    def backup(self, ctx: base.TaskContext) -> list[base.Artifact]:
        data = self._ctl('export_definitions', '-').stdout
        try:
            exported = json.loads(data)
        except ValueError:
            raise exception.OsbackupError(
                'rabbitmqctl export_definitions printed no JSON')
        key = ctx.key(ARTIFACT, '.json')
        writer = ctx.storage.open_writer(key)
        with writer:
            writer.write(data)
            location = writer.commit()
        ctx.progress(len(data), 1)
        return [base.Artifact(
            name=ARTIFACT, kind=artifact_kinds.COMMAND, location=location,
            size=len(data), sha256=hashlib.sha256(data).hexdigest(),
            key=key, meta={'command': 'export_definitions',
                           'rabbitmq_version': exported.get(
                               'rabbitmq_version'),
                           'users': len(exported.get('users', [])),
                           'vhosts': len(exported.get('vhosts', []))})]

    def _read(self, ctx, location, sha256) -> bytes:
        with ctx.storage.open_reader(location) as reader:
            data = reader.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise exception.OsbackupError(
                '%s is corrupt (sha256 mismatch); nothing imported'
                % location)
        return data

    def import_definitions(self, ctx: base.TaskContext, location: str,
                           sha256: str) -> None:
        """Load an exported artifact into the broker, checked first."""
        data = self._read(ctx, location, sha256)
        fd, path = tempfile.mkstemp(prefix='osbackup-rabbitmq-',
                                    suffix='.json')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
            self._ctl('import_definitions', path)
        finally:
            os.unlink(path)

    # -- an orchestrated restore (base.CommandRestore) -----------------

    def check_artifact(self, ctx, artifact, force):
        """The export is intact and JSON."""
        data = self._read(ctx, artifact['location'], artifact['sha256'])
        try:
            json.loads(data)
        except ValueError:
            raise exception.OsbackupError(
                '%s is not an export of definitions (no JSON)'
                % artifact['location'])

    def save_current(self, ctx, artifact):
        """The broker's definitions now, for a rollback.

        import_definitions adds and updates; it deletes nothing, so what
        was created after the backup is still there after a restore and
        after a rollback.
        """
        (saved,) = self.backup(ctx)
        return saved

    def restore_artifact(self, ctx, artifact, force):
        self.import_definitions(ctx, artifact['location'],
                                artifact['sha256'])
