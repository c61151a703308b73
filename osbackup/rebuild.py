"""The catalogue, rebuilt from the records on storage.

Reads every record (osbackup/records.py) on the targets, refuses the ones
that fail authentication or belong to another deployment, checks that
every artifact a record names is stored with the recorded size, and adds
what the catalogue lacks, one transaction per backup. Nothing is written
before every target has been read, so unreachable storage leaves the
catalogue as it was; a second run finds everything ``existing``.
"""

import sys
import time

from osbackup.db import records_api
from osbackup import exception
from osbackup import records
from osbackup import states
from osbackup import storage as storage_mod
from osbackup.storage import encrypted

#: Seconds between two progress lines on stderr.
PROGRESS_EVERY = 2.0


def default_targets(conf) -> list[str]:
    """The default target, then every named one."""
    first = conf.storage.backend
    return [first] + [t for t in conf.storage.targets if t != first]


def stored_size(copy: dict, size: int) -> int:
    """The bytes a copy of a ``size``-byte artifact takes in storage."""
    if (copy.get('location') or '').endswith(encrypted.SUFFIX):
        return encrypted.stored_size(size)
    return size


class Progress:
    def __init__(self, out=None, every: float = PROGRESS_EVERY):
        self.out = out or sys.stderr
        self.every = every
        self._last = time.monotonic()

    def __call__(self, fmt: str, *args, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            print(fmt % args, file=self.out, flush=True)


def read_records(conf, targets: list, progress=None):
    """Read the records on ``targets``.

    Returns (records, rejected, objects): records as [(name, record)],
    rejected as [{'record', 'reason'}], objects as {target: {location:
    size}}. Raises StorageError when a target cannot be listed or read.
    """
    progress = progress or Progress()
    sealer = records.Sealer.from_conf(conf)
    found, rejected, objects = [], [], {}
    for target in targets:
        try:
            storage = storage_mod.get_storage(conf, target)
            objects[target] = dict(records.stored(storage))
        except exception.InvalidInput:
            raise
        except Exception as exc:
            raise exception.StorageError(
                'Cannot list storage target %s: %s' % (target, exc))
        names = sorted(loc for loc in objects[target]
                       if records.is_record(loc))
        progress('%s: %d objects, %d records', target, len(objects[target]),
                 len(names), force=True)
        for n, location in enumerate(names, 1):
            name = '%s:%s' % (target, location)
            try:
                with storage.open_reader(location) as f:
                    data = f.read(records.MAX_SIZE + 1)
            except exception.ArtifactCorrupt as exc:
                rejected.append({'record': name, 'reason': exc.message})
                continue
            except Exception as exc:
                raise exception.StorageError(
                    'Cannot read %s: %s' % (name, exc))
            try:
                if len(data) > records.MAX_SIZE:
                    raise records.RecordRejected('%s is too large' % name)
                found.append((name, sealer.open(data, name)))
            except records.RecordRejected as exc:
                rejected.append({'record': name, 'reason': exc.message})
            progress('%s: %d/%d records read', target, n, len(names))
    return found, rejected, objects


def artifact_problems(record: dict, objects: dict) -> list[str]:
    """Why the record's artifacts cannot be restored, if they cannot.

    Copies on a target that was read must be stored with the recorded
    size; one that is not is imported as missing, and an artifact with no
    good copy on the targets read makes the backup incomplete.
    """
    problems = []
    for art in record['artifacts']:
        if art['status'] != states.AVAILABLE:
            continue
        what = '%s %s %s' % (art['host'], art['service'], art['name'])
        checked = good = 0
        for copy in art['copies']:
            stored = objects.get(copy['target'])
            if stored is None:
                continue
            checked += 1
            want = stored_size(copy, art['size'])
            have = stored.get(copy['location'])
            if have == want:
                good += 1
                continue
            copy['status'] = states.MISSING
            problems.append(
                '%s is missing from target %s (%s)'
                % (what, copy['target'], copy['location'])
                if have is None else
                '%s on target %s has %d bytes, the record says %d '
                '(truncated or replaced)'
                % (what, copy['target'], have, want))
        if not checked:
            problems.append('%s has no copy on the targets read (%s)'
                            % (what, ', '.join(sorted(objects))))
        elif good:
            # Another copy is good: the backup stays restorable.
            problems = [p for p in problems if not p.startswith(what)]
    return problems


def rebuild(conf, catalogue, targets: list | None = None,
            dry_run: bool = False, progress=None) -> dict:
    """Import the records of ``targets`` the catalogue lacks; a summary."""
    progress = progress or Progress()
    targets = targets or default_targets(conf)
    found, rejected, objects = read_records(conf, targets, progress)
    # One record per backup is enough: each lists every copy.
    by_uuid = {}
    for name, rec in found:
        by_uuid.setdefault(rec['uuid'], (name, rec))
    known = catalogue.backup_uuids()
    summary = {'imported': 0, 'existing': 0, 'incomplete': [],
               'rejected': rejected, 'dry_run': dry_run,
               'targets': targets}
    ordered = sorted(by_uuid.values(),
                     key=lambda nr: (nr[1]['created_at'], nr[1]['id']))
    for n, (name, rec) in enumerate(ordered, 1):
        progress('%d/%d backups', n, len(ordered))
        if rec['uuid'] in known:
            summary['existing'] += 1
            continue
        problems = artifact_problems(rec, objects)
        problems += ['its base backup %s is not in the catalogue' % base
                     for base in rec.get('parents') or []
                     if base not in known]
        if problems:
            summary['incomplete'].append({
                'record': name, 'uuid': rec['uuid'], 'id': rec['id'],
                'reason': '; '.join(problems)})
            continue
        outcome = records_api.IMPORTED
        if not dry_run:
            outcome, _id = catalogue.import_backup(rec)
        summary[outcome] += 1
        known.add(rec['uuid'])
    return summary
