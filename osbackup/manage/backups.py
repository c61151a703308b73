"""``osbackup-manage backup``: create, list and show backups."""

import sys
import time

from osbackup import exception
from osbackup import manage
from osbackup.manage import check
from osbackup.manage import output
from osbackup.manage import waiting
from osbackup import states

_SHOW_FIELDS = ['id', 'uuid', 'status', 'policy', 'hosts', 'services',
                'targets',
                'verified', 'created_at', 'finished_at', 'error']


def artifact_rows(backup: dict) -> list:
    """The artifacts of a backup as the CLI shows them.

    A task that stored nothing still appears, so a skipped or failed
    service is visible next to the ones that succeeded.
    """
    rows = [dict({k: a.get(k) for k in ('id', 'host', 'service', 'name',
                                        'kind', 'status', 'size', 'sha256',
                                        'location', 'copies', 'parent_id',
                                        'meta')},
                 level=(a.get('meta') or {}).get('level'))
            for a in backup['artifacts']]
    for task in backup['tasks']:
        if task['status'] not in (states.SUCCEEDED, states.SKIPPED):
            rows.append({'host': task['host'], 'service': task['service'],
                         'name': task['service'], 'kind': None,
                         'status': task['status'].lower(), 'size': None,
                         'sha256': None, 'location': None,
                         'error': task['error']})
    return sorted(rows, key=lambda r: (r['host'], r['service'], r['name']))


def _level(row: dict) -> str | None:
    """'full', or 'incr. on 12' naming the backup it is based on."""
    meta = row.get('meta') or {}
    if meta.get('level') == 'incremental':
        return 'incr. on %s' % meta.get('base')
    return meta.get('level')


def public(backup: dict) -> dict:
    """The JSON form of a backup."""
    out = {k: backup[k] for k in _SHOW_FIELDS}
    out['artifacts'] = artifact_rows(backup)
    keys = ('id', 'host', 'service', 'kind', 'status', 'error', 'started_at',
            'finished_at', 'progress_bytes', 'progress_files')
    out['tasks'] = [{k: t[k] for k in keys} for t in backup['tasks']]
    return out


def _services(backup: dict):
    """The services a backup selected; none named means all."""
    return backup['services'] or 'all'


def print_backup(backup: dict) -> None:
    output.fields(dict(backup, services=_services(backup)), _SHOW_FIELDS)
    output.table(artifact_rows(backup), [
        ('Host', 'host'), ('Service', 'service'), ('Name', 'name'),
        ('Status', 'status'), ('Size', lambda r: output.human_size(r['size'])),
        ('Level', _level),
        ('SHA-256', lambda r: (r['sha256'] or '')[:16] or None),
        ('Location / error', lambda r: r.get('location') or r.get('error'))])


class BackupCommands(check.CheckCommand):
    """Backups of the fleet."""

    def __init__(self, env):
        self.env = env

    @manage.args('--host', dest='hosts', action='append', default=[],
                 metavar='HOST',
                 help='Back up this host (repeatable). Default: every agent '
                      'that is up.')
    @manage.args('--service', dest='services', action='append', default=[],
                 metavar='SERVICE',
                 help='Back up this service (repeatable), e.g. mysql, nova. '
                      'Default: every driver of each agent.')
    @manage.args('--target', dest='targets', action='append', default=[],
                 metavar='TARGET',
                 help='Storage target (repeatable): the first is written, '
                      'the others receive verified copies. Default: '
                      '[storage] backend.')
    @manage.args('--policy', metavar='NAME',
                 help='Run this policy now: its hosts, services and '
                      'targets unless given here; the backup belongs to '
                      'the policy (retention applies).')
    @manage.args('--full', action='store_true',
                 help='Read and store every file again: no incremental file '
                      'set, a new chain starts here (e.g. before an '
                      'upgrade).')
    @manage.args('--wait', action='store_true',
                 help='Wait for the backup to end, showing progress; exit '
                      'non-zero unless every task succeeded. Always on in '
                      'all-in-one mode.')
    @manage.format_arg
    def create(self, hosts=None, services=None, targets=None, policy=None,
               full=False, wait=False, fmt='table'):
        """Back up services on hosts: one task per (host, service)."""
        extra = {'full': True} if full else {}
        backup = self.env.call('create_backup', hosts=hosts or [],
                               services=services or [],
                               targets=targets or [], policy=policy,
                               **extra)
        if wait or self.env.all_in_one:
            print('Backup %s started' % backup['id'], file=sys.stderr)
            backup = waiting.wait(
                lambda: self.env.catalogue.get_backup(backup['id']))
        if fmt == 'json':
            output.emit_json(public(backup))
        else:
            print_backup(backup)
        if backup['status'] in (states.PENDING, states.RUNNING):
            return manage.EXIT_OK
        return manage.EXIT_OK if backup['status'] == states.SUCCEEDED \
            else manage.EXIT_FAILED

    @manage.args('--limit', type=int, default=None,
                 help='Show only the newest N backups.')
    @manage.format_arg
    def list(self, limit=None, fmt='table'):
        """List backups, newest first."""
        backups = self.env.catalogue.list_backups(limit)
        if fmt == 'json':
            output.emit_json(backups)
        else:
            output.table(backups, [
                ('ID', 'id'), ('Status', 'status'),
                ('Created', 'created_at'), ('Hosts', 'hosts'),
                ('Services', _services),
                ('Artifacts', 'artifact_count'),
                ('Size', lambda b: output.human_size(b['size'])),
                ('Policy', 'policy'),
                ('Verified', lambda b: b['verified'] and '%s %s' % (
                    b['verified']['status'], b['verified']['at']))])
        return manage.EXIT_OK

    @manage.args('backup_id', type=int, metavar='BACKUP_ID',
                 help='ID of the backup.')
    @manage.format_arg
    def show(self, backup_id, fmt='table'):
        """Show a backup with its artifacts."""
        backup = self.env.catalogue.get_backup(backup_id)
        if fmt == 'json':
            output.emit_json(public(backup))
        else:
            print_backup(backup)
        return manage.EXIT_OK

    @manage.args('backup_id', type=int, metavar='BACKUP_ID',
                 help='ID of the backup.')
    @manage.args('--deep', action='store_true',
                 help='Also unpack every archive into a scratch directory '
                      'against its manifest and load every SQL dump into a '
                      'scratch schema (then dropped).')
    @manage.format_arg
    def verify(self, backup_id, deep=False, fmt='table'):
        """Re-read every copy of a backup and check it (a restore test)."""
        ver = self.env.call('verify_backup', backup_id=backup_id, deep=deep)
        ver = waiting.wait(
            lambda: self.env.catalogue.get_verification(ver['id']),
            done=lambda v: v['status'] != states.RUNNING)
        backup = self.env.catalogue.get_backup(backup_id)
        found = self._audit(backup['targets'] or None)
        # This backup's objects that are gone; any target's orphans.
        found['missing'] = [m for m in found['missing']
                            if m['backup_id'] == backup_id]
        out = {'backup_id': backup_id, 'verification_id': ver['id'],
               'deep': deep, 'status': ver['status'],
               'problems': ver['problems'], 'checked': ver['details'],
               **found}
        if fmt == 'json':
            output.emit_json(out)
        else:
            print('Backup %s: %s' % (backup_id, ver['status']))
            output.table(ver['details'] + ver['problems'], [
                ('Host', 'host'), ('Artifact', 'artifact'), ('Copy', 'copy'),
                ('Result', lambda r: r.get('error') and 'CORRUPT' or 'OK'),
                ('Checked', lambda r: r.get('error') or ', '.join(
                    '%s=%s' % (k, r[k]) for k in ('size', 'files', 'tables',
                                                  'rows') if k in r))])
            print_audit(found)
        return manage.EXIT_OK if ver['status'] == 'OK' and \
            not found['missing'] else manage.EXIT_FAILED

    def _audit(self, targets=None) -> dict:
        """Orphans and missing objects of the targets (storage/audit.py)."""
        from osbackup.storage import audit
        return audit.audit(self.env.conf,
                           self.env.catalogue.backups_with_artifacts(),
                           targets)

    @manage.args('--dry-run', action='store_true',
                 help='Only list what would be deleted.')
    @manage.args('--delete-orphans', action='store_true',
                 help='Also delete orphans (complete objects of osbackup\'s '
                      'layout that no catalogue row names) older than '
                      '--orphan-age. Without it they are only reported: '
                      '"catalogue rebuild" may import them back.')
    @manage.args('--orphan-age', type=int, metavar='SECONDS',
                 help='Minimum age of the orphans --delete-orphans deletes '
                      '(default: [storage] orphan_age).')
    @manage.format_arg
    def prune(self, dry_run=False, delete_orphans=False, orphan_age=None,
              fmt='table'):
        """Delete backups their policy no longer keeps, from every target.

        The newest good backup of every service and database is always
        kept, whatever the policy says. Leftovers of interrupted writes
        older than [storage] leftover_age go too; orphans and missing
        objects are reported.
        """
        if orphan_age is not None and orphan_age < 0:
            raise exception.InvalidInput('--orphan-age must be 0 or more')
        doomed = self.env.call('prune_backups', dry_run=dry_run)
        if not dry_run:
            self._wait_deleted([d['id'] for d in doomed])
        found = self._audit()
        deleted = []
        if delete_orphans and not dry_run:
            from osbackup.storage import audit
            age = self.env.conf.storage.orphan_age if orphan_age is None \
                else orphan_age
            deleted = audit.delete_orphans(self.env.conf, found['orphans'],
                                           age)
        out = {'backups': doomed, 'orphans_deleted': deleted, **found}
        if fmt == 'json':
            output.emit_json(out)
        else:
            print('%s %d backup(s)' % ('Would delete' if dry_run
                                       else 'Deleting', len(doomed)))
            output.table(doomed, [('ID', 'id'), ('Policy', 'policy'),
                                  ('Created', 'created_at'),
                                  ('Reason', 'reason')])
            print_audit(found)
            if deleted:
                print('Deleted %d orphan(s)' % len(deleted))
        return manage.EXIT_OK

    @manage.args('backup_id', type=int, metavar='BACKUP_ID',
                 help='ID of the backup.')
    @manage.args('--force', action='store_true',
                 help='Delete even the newest good backup of a service.')
    @manage.format_arg
    def delete(self, backup_id, force=False, fmt='table'):
        """Delete a backup's artifacts from every target and the catalogue."""
        result = self.env.call('delete_backup', backup_id=backup_id,
                               force=force)
        result['status'] = self._wait_deleted([backup_id])[backup_id]
        if fmt == 'json':
            output.emit_json(result)
        else:
            print('Backup %s: %s' % (backup_id, result['status']))
        return manage.EXIT_OK

    def _wait_deleted(self, backup_ids, poll=0.5):
        """Wait (bounded) until the agents removed the backups' objects."""
        deadline = time.monotonic() + self.env.conf.conductor.rpc_timeout
        left = set(backup_ids)
        state = {}
        while left:
            for backup_id in sorted(left):
                try:
                    state[backup_id] = self.env.catalogue.get_backup(
                        backup_id)['status']
                except exception.NotFound:
                    state[backup_id] = 'DELETED'
                    left.discard(backup_id)
            if left and time.monotonic() > deadline:
                print('Still deleting backup(s) %s: an agent may be down; '
                      'the next prune retries' % ', '.join(
                          str(b) for b in sorted(left)), file=sys.stderr)
                break
            if left:
                time.sleep(poll)
        return state


def print_audit(found: dict) -> None:
    """The orphans, missing objects and unlisted targets of an audit."""
    if found['orphans']:
        print('%d orphan(s): stored, but in no catalogue row (kept; '
              '"backup prune --delete-orphans" removes them)'
              % len(found['orphans']))
        output.table(found['orphans'], [
            ('Target', 'target'), ('Location', 'location'),
            ('Size', 'size'), ('Modified', 'mtime')])
    if found['missing']:
        print('%d missing object(s): in the catalogue, not in storage'
              % len(found['missing']))
        output.table(found['missing'], [
            ('Target', 'target'), ('Backup', 'backup_id'),
            ('Host', 'host'), ('Artifact', 'artifact'),
            ('Location', 'location')])
    for error in found['errors']:
        print('Target %s not audited: %s' % (error['target'],
                                             error['error']),
              file=sys.stderr)
