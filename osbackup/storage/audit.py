"""What the catalogue says against what the targets hold.

``audit`` lists every target (Storage.list) and compares it with the
catalogue: a complete object of osbackup's own layout that no catalogue
row names is an *orphan* (a backup whose late report was lost, a
catalogue restored from an older dump); an object the catalogue names
that the target lacks is *missing*. Orphans are reported, never deleted
here: ``catalogue rebuild`` may import them back from their records, and
only ``delete_orphans`` (``backup prune --delete-orphans``) removes them.

Storage records (``_records/``) belong to disaster recovery and are left
out. Only keys of the layout osbackup writes,
``<host>/<backup id or uuid>/<service>/<name>.<kind>.zst[.enc]``, are ever
reported or deleted, so a bucket shared with other data is safe.
"""

from __future__ import annotations

import calendar
import re
import time
import typing

from oslo_log import log as logging

from osbackup import exception
from osbackup import rebuild
from osbackup import records
from osbackup import states
from osbackup import storage as storage_mod
from osbackup.storage import base

LOG = logging.getLogger(__name__)

#: The tail of an artifact's location, whatever the backend.
ARTIFACT_LOCATION = re.compile(r'(?:^|/)%s$' % base.ARTIFACT_KEY)
#: Backups whose objects may be committed before the catalogue has them.
_ACTIVE = (states.RUNNING, states.PENDING)


def copies_of(conf, artifact: dict) -> list[dict]:
    """Where an artifact is stored: its copies, or its one location.

    Artifacts written before copies were recorded have only a location,
    on the default target.
    """
    if artifact['copies']:
        return artifact['copies']
    if not artifact['location']:
        return []
    return [{'target': conf.storage.backend,
             'location': artifact['location']}]


def expected(conf, backups: list) -> tuple[dict, set]:
    """({target: {location: artifact}}, refs of backups still running).

    ``backups`` as Catalogue.backups_with_artifacts gives them.
    """
    by_target: dict = {}
    active = set()
    for b in backups:
        if b['status'] in _ACTIVE:
            active.update(str(r) for r in (b['id'], b.get('uuid')) if r)
        for a in b['artifacts']:
            for c in copies_of(conf, a):
                if c.get('location'):
                    by_target.setdefault(c['target'], {})[c['location']] = \
                        dict(backup_id=b['id'], artifact=a['name'],
                             host=a['host'], backup_status=b['status'])
    return by_target, active


def _ours(location: str) -> re.Match | None:
    """The layout match of an artifact location, None for anything else."""
    if records.is_record(location):
        return None
    return ARTIFACT_LOCATION.search(location)


def audit(conf, backups: list, targets: list | None = None,
          get_storage: typing.Callable = storage_mod.get_storage) -> dict:
    """Orphans, missing objects and unreadable targets.

    Returns {'orphans': [{target, location, size, mtime}], 'missing':
    [{target, location, backup_id, artifact, host}], 'errors': [{target,
    error}]}.
    """
    wanted, active = expected(conf, backups)
    out = {'orphans': [], 'missing': [], 'errors': []}
    for target in targets or rebuild.default_targets(conf):
        known = wanted.get(target, {})
        seen = set()
        try:
            storage = get_storage(conf, target)
            for obj in storage.list():
                if obj.location in known:
                    seen.add(obj.location)
                    continue
                match = _ours(obj.location)
                if match is None or match.group('ref') in active:
                    continue
                out['orphans'].append({
                    'target': target, 'location': obj.location,
                    'size': obj.size, 'mtime': _iso(obj.mtime)})
        except exception.OsbackupError as exc:
            out['errors'].append({'target': target, 'error': exc.message})
            continue
        for location, art in sorted(known.items()):
            if location not in seen and \
                    art['backup_status'] != states.DELETING:
                out['missing'].append(dict(
                    target=target, location=location,
                    backup_id=art['backup_id'], artifact=art['artifact'],
                    host=art['host']))
    return out


def delete_orphans(conf, orphans: list, min_age: float,
                   get_storage: typing.Callable = storage_mod.get_storage,
                   now: float | None = None) -> list[dict]:
    """Delete the ``orphans`` (from ``audit``) older than ``min_age`` s."""
    now = time.time() if now is None else now
    deleted = []
    storages = {}
    for orphan in orphans:
        if _ours(orphan['location']) is None or \
                now - _epoch(orphan['mtime']) < min_age:
            continue
        target = orphan['target']
        if target not in storages:
            storages[target] = get_storage(conf, target)
        storages[target].delete(orphan['location'])
        LOG.info('Deleted the orphan %s of target %s (%s bytes)',
                 orphan['location'], target, orphan['size'])
        deleted.append(orphan)
    return deleted


def remove_leftovers(conf, max_age: float, targets: list | None = None,
                     get_storage: typing.Callable = storage_mod.get_storage
                     ) -> list[str]:
    """Remove leftovers of interrupted writes older than ``max_age`` s.

    Partial files, segments without a manifest, unfinished multipart
    uploads, on every target this process can reach; a target it cannot
    reach is logged and skipped.
    """
    removed = []
    for target in targets or rebuild.default_targets(conf):
        try:
            found = get_storage(conf, target).cleanup_orphans(max_age)
        except Exception as exc:
            LOG.warning('Leftovers of interrupted writes on target %s were '
                        'not removed: %s', target, exc)
            continue
        for item in found:
            LOG.info('Removed %s, left by an interrupted write on target %s',
                     item, target)
        removed += found
    return removed


def _iso(mtime: float) -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(mtime))


def _epoch(iso: str) -> float:
    return calendar.timegm(time.strptime(iso, '%Y-%m-%dT%H:%M:%SZ'))
