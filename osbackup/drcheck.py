"""``backup check --dr``: can this machine recover from storage alone?

Needs only the configuration, the keys and the storage targets, no
catalogue: it finds the newest backup of every (host, service) among the
records (osbackup/records.py), authenticates the records, and reads each
of its artifacts, and the bases of incremental ones, in full, checking the
sha256 the record gives. OK only when every one could be read.
"""

import hashlib

from osbackup import exception
from osbackup import rebuild
from osbackup import states
from osbackup import storage as storage_mod
from osbackup import streams

OK = 'OK'
CRITICAL = 'CRITICAL'


def _index(found) -> dict:
    """{(backup uuid, host, service, name): (record, artifact)}."""
    out = {}
    for _name, rec in found:
        for art in rec['artifacts']:
            out[(rec['uuid'], art['host'], art['service'], art['name'])] = \
                (rec, art)
    return out


def newest(found, hosts=(), services=()) -> dict:
    """{(host, service): the newest record holding its stored artifacts}."""
    best = {}
    for _name, rec in found:
        if rec['status'] != states.SUCCEEDED:
            continue
        for art in rec['artifacts']:
            key = (art['host'], art['service'])
            if art['status'] != states.AVAILABLE or \
                    (hosts and key[0] not in hosts) or \
                    (services and key[1] not in services):
                continue
            # Times are to the second; ids order backups within one.
            if key not in best or (rec['created_at'], rec['id']) > (
                    best[key]['created_at'], best[key]['id']):
                best[key] = rec
    return best


def read_sha256(storage, location: str) -> str:
    """The sha256 of the object's content (decrypted), read in full."""
    digest = hashlib.sha256()
    with storage.open_reader(location) as f:
        while True:
            data = f.read(streams.CHUNK)
            if not data:
                return digest.hexdigest()
            digest.update(data)


def _read(storages, art) -> tuple[str | None, str | None]:
    """(target read, None) or (None, why no copy could be read)."""
    errors = []
    for copy in art['copies']:
        storage = storages.get(copy['target'])
        if storage is None or not copy.get('location'):
            continue
        try:
            got = read_sha256(storage, copy['location'])
        except exception.OsbackupError as exc:
            errors.append('%s: %s' % (copy['target'], exc.message))
            continue
        except Exception as exc:
            errors.append('%s: %s' % (copy['target'], exc))
            continue
        if got == art['sha256']:
            return copy['target'], None
        errors.append('%s: sha256 %s, the record says %s'
                      % (copy['target'], got, art['sha256']))
    return None, '; '.join(errors) or 'no copy on the targets read'


def check(conf, targets=None, hosts=(), services=(), progress=None) -> dict:
    """The report: state, exit code, one item per (host, service)."""
    targets = targets or rebuild.default_targets(conf)
    found, rejected, _objects = rebuild.read_records(conf, targets, progress)
    storages = {t: storage_mod.get_storage(conf, t) for t in targets}
    index = _index(found)
    items = []
    for (host, service), rec in sorted(newest(found, hosts,
                                              services).items()):
        checked, problems = [], []
        todo = [(rec, a) for a in rec['artifacts']
                if (a['host'], a['service']) == (host, service) and
                a['status'] == states.AVAILABLE]
        while todo:
            owner, art = todo.pop(0)
            target, error = _read(storages, art)
            entry = {'backup_uuid': owner['uuid'], 'name': art['name'],
                     'sha256': art['sha256'], 'size': art['size'],
                     'target': target}
            (problems if error else checked).append(
                dict(entry, error=error) if error else entry)
            base = art.get('parent')
            if base:
                key = (base['backup_uuid'], base['host'], base['service'],
                       base['name'])
                if key in index:
                    todo.append(index[key])
                else:
                    problems.append(dict(entry, error='its base in backup '
                                         '%s has no record'
                                         % base['backup_uuid']))
        items.append({'host': host, 'service': service,
                      'backup_uuid': rec['uuid'], 'backup_id': rec['id'],
                      'created_at': rec['created_at'],
                      'state': CRITICAL if problems else OK,
                      'checked': checked, 'problems': problems})
    if hosts:
        seen = {i['host'] for i in items}
        items += [{'host': h, 'service': None, 'state': CRITICAL,
                   'checked': [], 'problems': [{'error': 'no backup found'}]}
                  for h in hosts if h not in seen]
    bad = [i for i in items if i['state'] != OK]
    state = CRITICAL if bad or rejected or not items else OK
    summary = ('%d (host, service) pairs readable from %s'
               % (len(items), ', '.join(targets)) if state == OK else
               '%d of %d (host, service) pairs not recoverable, %d records '
               'rejected' % (len(bad), len(items), len(rejected)))
    return {'state': state, 'exit_code': 0 if state == OK else 2,
            'summary': summary, 'targets': targets, 'items': items,
            'rejected': rejected}
