"""Work on stored artifacts: copies, verification, deletion, swift rings.

A backup is written to its first target by the driver and then copied,
re-read and checked, to each further target of its policy. Verification
re-reads every copy; ``deep`` also unpacks file sets into a scratch
directory (checking each file against the manifest) and loads SQL dumps
into a scratch schema. Ring distribution installs swift's ring and
builder files from a backup atomically into /etc/swift.
"""

import contextlib
import os
import shutil
import tempfile

from oslo_log import log as logging

from osbackup import archive
from osbackup.definitions import mysql as mysql_definition
from osbackup.drivers import base as driver_base
from osbackup import durable
from osbackup import exception
from osbackup import storage as storage_mod
from osbackup.storage import throttle
from osbackup import streams

LOG = logging.getLogger(__name__)


class Storages:
    """Storage backends by target name, loaded on first use."""

    def __init__(self, conf, primary):
        self.conf = conf
        self._loaded = {primary.name: throttle.wrap(conf, primary)}

    def get(self, name: str):
        if name not in self._loaded:
            self._loaded[name] = throttle.wrap(
                self.conf, storage_mod.get_storage(self.conf, name))
        return self._loaded[name]


def copy_artifact(source, target, location: str, key: str,
                  sha256: str) -> dict:
    """Copy one stored object to another target and check it arrived.

    The copy is read back from the target; a copy whose checksum differs
    from the source is deleted and reported as an error.
    """
    with contextlib.closing(source.open_reader(location)) as raw:
        reader = streams.HashingReader(raw)
        with target.open_writer(key) as writer:
            for chunk in iter(lambda: reader.read(streams.CHUNK), b''):
                writer.write(chunk)
            if reader.sha256 != sha256:
                raise exception.ArtifactCorrupt(
                    'Source %s changed while being copied (sha256 %s, '
                    'expected %s)' % (location, reader.sha256, sha256))
            copied = writer.commit()
    with contextlib.closing(target.open_reader(copied)) as raw:
        digest, size = streams.file_sha256(raw)
    if digest != sha256:
        target.delete(copied)
        raise exception.StorageError(
            'Copy to %s arrived with sha256 %s, expected %s'
            % (target.name, digest, sha256))
    return {'target': target.name, 'location': copied, 'size': size,
            'sha256': digest}


class Maintenance:
    """Verify, delete and distribute from stored artifacts on this node."""

    def __init__(self, conf, host, drivers, storages):
        self.conf = conf
        self.host = host
        self.drivers = drivers
        self.storages = storages

    # -- verification ----------------------------------------------------

    def verify(self, params: dict, progress) -> dict:
        problems, details = [], []
        for art in params['artifacts']:
            for copy in art['copies']:
                problem, detail = self._verify_copy(art, copy,
                                                    params.get('deep'),
                                                    progress)
                entry = {'host': self.host, 'artifact_id': art['id'],
                         'artifact': art['name'], 'service': art['service'],
                         'copy': copy['target'],
                         'location': copy['location']}
                if problem:
                    problems.append(dict(entry, error=problem))
                else:
                    details.append(dict(entry, **detail))
        return {'problems': problems, 'details': details}

    def _verify_copy(self, art, copy, deep, progress):
        expected = copy.get('sha256') or art['sha256']
        try:
            storage = self.storages.get(copy['target'])
            with contextlib.closing(
                    storage.open_reader(copy['location'])) as raw:
                reader = streams.HashingReader(raw)
                detail = {'status': 'OK'}
                if deep and art['kind'] == 'files':
                    detail.update(self._unpack(reader, art))
                reader.drain()
            if reader.sha256 != expected:
                return ('sha256 %s, expected %s' % (reader.sha256, expected),
                        None)
            if deep and art['kind'] == 'sql':
                detail.update(self._scratch_load(storage, copy, art,
                                                 expected, progress))
            detail['size'] = reader.size
            return None, detail
        except exception.OsbackupError as exc:
            return exc.message, None
        except OSError as exc:
            return str(exc), None

    def _unpack(self, reader, art):
        scratch = tempfile.mkdtemp(prefix='verify-', dir=self._scratch_dir())
        try:
            targets = {p: os.path.join(scratch, p.replace('/', '_'))
                       for p in art['meta'].get('paths', [])}
            manifest = archive.extract_archive(reader, targets)
            files = sum(e['type'] == 'file' for e in manifest['entries'])
            return {'files': files}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _scratch_load(self, storage, copy, art, expected, progress):
        mysql = self.drivers.get(mysql_definition.NAME)
        if mysql is None:
            raise exception.InvalidInput(
                'Deep verification of %s needs the mysql driver on %s'
                % (art['name'], self.host))
        ctx = driver_base.TaskContext('verify', 'verify', self.host,
                                      mysql_definition.NAME,
                                      storage, progress)
        return mysql.scratch_load(ctx, copy['location'], art['name'],
                                  expected)

    def _scratch_dir(self):
        path = os.path.join(self.conf.state_path, 'agent', 'scratch')
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    # -- deletion --------------------------------------------------------

    def delete(self, params: dict, progress) -> dict:
        deleted, errors = [], []
        for obj in params['objects']:
            try:
                self.storages.get(obj['target']).delete(obj['location'])
                deleted.append(obj)
            except (exception.OsbackupError, OSError) as exc:
                errors.append(dict(obj, error=getattr(exc, 'message', None)
                                   or str(exc)))
        result = {'deleted': deleted}
        if errors:
            result['error'] = '%d object(s) could not be deleted: %s' % (
                len(errors), errors[0]['error'])
            result['errors'] = errors
        return result

    # -- swift rings -----------------------------------------------------

    def distribute_rings(self, params: dict, progress) -> dict:
        art = params['artifact']
        etc = os.path.join(self.conf.agent.root_path, 'etc/swift')
        if not os.path.isdir(etc):
            raise exception.InvalidInput('%s has no /etc/swift' % self.host)
        scratch = tempfile.mkdtemp(prefix='rings-', dir=self._scratch_dir())
        try:
            staged = self._extract_from_any_copy(art, scratch)
            installed = []
            for rel in params['rings']:
                name = os.path.basename(rel)
                src = os.path.join(staged, name)
                if not os.path.isfile(src):
                    raise exception.ArtifactCorrupt(
                        '%s is not in the swift backup' % rel)
                installed.append(self._install(src, os.path.join(etc, name)))
            return {'files': installed}
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _extract_from_any_copy(self, art, scratch):
        """Unpack /etc/swift from the first readable copy; return its dir."""
        errors = []
        for n, copy in enumerate(art['copies']):
            staged = os.path.join(scratch, str(n))
            targets = {'etc/swift': staged}
            try:
                storage = self.storages.get(copy['target'])
                with contextlib.closing(
                        storage.open_reader(copy['location'])) as raw:
                    reader = streams.HashingReader(raw)
                    # Checked whole below, before the rings are used.
                    archive.extract_archive(reader, targets,
                                            hash_files=False)
                    reader.drain()
                if reader.sha256 != (copy.get('sha256') or art['sha256']):
                    raise exception.ArtifactCorrupt('checksum mismatch')
                return staged
            except (exception.OsbackupError, OSError) as exc:
                errors.append('%s: %s' % (copy['target'],
                                          getattr(exc, 'message', exc)))
        raise exception.NotFound(
            'No copy of the swift backup is readable from %s (%s); ring '
            'distribution needs shared or off-site storage'
            % (self.host, '; '.join(errors)))

    @staticmethod
    def _install(src, dest):
        """Replace one ring file atomically, keeping its owner."""
        st = os.stat(src)
        tmp = dest + '.osbackup-new'
        shutil.copyfile(src, tmp)
        os.chmod(tmp, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
            digest, size = streams.file_sha256(f)
        os.rename(tmp, dest)
        durable.fsync_dir(os.path.dirname(dest))
        return {'path': '/etc/swift/' + os.path.basename(dest),
                'sha256': digest, 'size': size}
