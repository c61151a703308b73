"""Storage records: what makes a backup target self-describing.

When a backup ends, the conductor writes one record per target beside the
artifacts (``_records/<backup uuid>.json``, ``.json.enc`` when artifacts
are encrypted): the backup (uuid, id, hosts, services, policy, level,
times, the uuids of the backups its incrementals are based on) and one
entry per artifact (kind, host, service, name, location on that target,
size, sha256, meta with the manifest summary, the base it is incremental
on, every copy). ``osbackup-manage catalogue rebuild`` reads them back
into an empty catalogue; ``backup check --dr`` reads them without one.

A record is canonical JSON (sorted keys, no blanks) in an envelope::

    {"format": "osbackup-record/1", "deployment": ID, "record": {...},
     "hmac": HMAC-SHA256(record key, canonical {format, deployment, record})}

The key is ``[storage] record_key_file``, else a subkey of the archive
encryption key; never the transport credentials. The deployment id lets a
rebuild refuse another cloud's records by name rather than as tampered.
"""

import hashlib
import hmac
import json

from osbackup import exception
from osbackup import keyfile

FORMAT = 'osbackup-record/1'
#: Key prefix of the records on every target.
PREFIX = '_records/'
SUFFIXES = ('.json', '.json.enc')
#: A record larger than this is not one of ours (a backup of 100 000
#: artifacts takes about 60 MiB).
MAX_SIZE = 256 << 20


class RecordRejected(exception.OsbackupError):
    """A record that failed authentication or is not this deployment's."""

    code = 'record_rejected'


def canonical(obj) -> bytes:
    """The one byte form of a JSON value that the HMAC covers."""
    return json.dumps(obj, sort_keys=True, separators=(',', ':'),
                      ensure_ascii=False, allow_nan=False).encode()


def key_of(backup_uuid: str) -> str:
    """Storage key of a backup's record."""
    return '%s%s.json' % (PREFIX, backup_uuid)


def is_record(location: str) -> bool:
    """Whether a stored object's location is a record's."""
    return ('/' + PREFIX in '/' + location and
            location.endswith(SUFFIXES))


class Sealer:
    """Signs and checks records with the deployment's record key."""

    def __init__(self, key: bytes | None, deployment: str | None = None):
        self._key = key and keyfile.derive(key, b'storage records')
        self.deployment = deployment or (
            keyfile.key_id(key) if key else 'unauthenticated')

    @classmethod
    def from_conf(cls, conf) -> 'Sealer':
        opts = conf.storage
        if opts.record_key_file:
            key = keyfile.load(opts.record_key_file,
                               '[storage] record_key_file')
        elif opts.encryption_key_file:
            key = keyfile.load(opts.encryption_key_file,
                               '[storage] encryption_key_file')
        else:
            key = None
        return cls(key, opts.deployment_id)

    @property
    def authenticated(self) -> bool:
        return self._key is not None

    def _mac(self, body: dict) -> str:
        return hmac.new(self._key, canonical(body), hashlib.sha256).hexdigest()

    def seal(self, record: dict) -> bytes:
        body = {'format': FORMAT, 'deployment': self.deployment,
                'record': record}
        return canonical(dict(body, hmac=self._mac(body) if self._key
                              else None))

    def open(self, data: bytes, name: str) -> dict:
        """The record in ``data``; RecordRejected naming ``name`` if bad."""
        try:
            env = json.loads(data)
        except ValueError:
            raise RecordRejected('%s is not a record (not JSON)' % name)
        if not isinstance(env, dict) or env.get('format') != FORMAT or \
                not isinstance(env.get('record'), dict):
            raise RecordRejected('%s is not an %s record' % (name, FORMAT))
        if env.get('deployment') != self.deployment:
            raise RecordRejected(
                '%s belongs to deployment %r, not to this one (%r)'
                % (name, env.get('deployment'), self.deployment))
        body = {k: env[k] for k in ('format', 'deployment', 'record')}
        if self._key is None:
            if env.get('hmac') is not None:
                raise RecordRejected(
                    '%s is authenticated but no record key is configured '
                    '([storage] record_key_file or encryption_key_file)'
                    % name)
            return env['record']
        if not isinstance(env.get('hmac'), str) or not hmac.compare_digest(
                env['hmac'], self._mac(body)):
            raise RecordRejected(
                '%s failed authentication: it was changed, or written with '
                'another record key' % name)
        return env['record']


def level_of(artifacts: list) -> str:
    return 'incremental' if any(
        (a.get('meta') or {}).get('level') == 'incremental'
        for a in artifacts) else 'full'


def location_on(artifact: dict, target: str, primary: str) -> str | None:
    """Where ``artifact`` is stored on ``target``, if it is there."""
    for copy in artifact.get('copies') or []:
        if copy.get('target') == target:
            return copy.get('location')
    if not artifact.get('copies') and target == primary:
        return artifact.get('location')
    return None


def build(backup: dict, parents: dict, target: str, version: str) -> dict:
    """The record of ``backup`` (Catalogue.get_backup) for ``target``.

    ``parents`` maps the id of every base artifact to {backup_uuid,
    backup_id, host, service, name}: chains are recorded by uuid.
    """
    primary = (backup.get('targets') or [target])[0]
    artifacts = []
    for a in backup['artifacts']:
        artifacts.append({
            'host': a['host'], 'service': a['service'], 'name': a['name'],
            'kind': a['kind'], 'status': a['status'],
            'location': location_on(a, target, primary),
            'size': a['size'], 'sha256': a['sha256'], 'meta': a['meta'] or {},
            'created_at': a['created_at'],
            'parent': parents.get(a['parent_id']) if a['parent_id'] else None,
            'copies': [{k: c.get(k) for k in ('target', 'location', 'size',
                                              'sha256')}
                       for c in a.get('copies') or []] or [
                {'target': primary, 'location': a['location'],
                 'size': a['size'], 'sha256': a['sha256']}]})
    return {
        'uuid': backup['uuid'], 'id': backup['id'],
        'status': backup['status'], 'hosts': backup['hosts'],
        'services': backup['services'], 'policy': backup['policy'],
        'targets': backup['targets'], 'target': target,
        'level': level_of(backup['artifacts']),
        'parents': sorted({p['backup_uuid'] for p in parents.values()}),
        'created_at': backup['created_at'],
        'finished_at': backup['finished_at'], 'error': backup['error'],
        'osbackup_version': version, 'artifacts': artifacts}


def stored(storage, prefix: str = ''):
    """(location, size) of every committed object under ``prefix``."""
    for obj in storage.list(prefix):
        yield obj.location, obj.size
