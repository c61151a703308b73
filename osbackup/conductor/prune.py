"""Retention: delete what no policy keeps, from every target, then forget it.

Policies decide (conductor/retention.py); this module applies the
decision. Whatever the rules say, the newest good artifact of every
(host, service, database) is kept, and a backup being restored is never
touched. Deletion is a task on the host that wrote each artifact (its local
storage may be reachable only there); the catalogue rows go once every
stored copy is gone, so an agent that is down delays a deletion instead of
losing track of the objects.
"""

from oslo_log import log as logging

from osbackup.conductor import binlogs
from osbackup.conductor import notify
from osbackup.conductor import retention
from osbackup.db import rows
from osbackup import exception
from osbackup import states
from osbackup.storage import audit

LOG = logging.getLogger(__name__)

DELETING = states.DELETING


def rules_of(policy: dict) -> retention.Rules:
    return retention.Rules(**{k: policy[k] for k in (
        'keep_days', 'keep_last', 'keep_daily', 'keep_weekly',
        'keep_monthly')})


def dependents(backups: list) -> dict:
    """{backup id: ids of the backups with an artifact based on it}."""
    out = {}
    for b in backups:
        for a in b['artifacts']:
            base = a.get('parent_backup')
            if base is not None and base != b['id']:
                out.setdefault(base, set()).add(b['id'])
    return out


def chain_safe(doomed: set, backups: list, pending: set) -> set:
    """The doomed backups that can go without breaking a chain.

    A base goes only together with, or after, every backup based on it:
    one that a kept backup (or a running incremental) still needs stays.
    """
    above = dependents(backups)
    deleting = {b['id'] for b in backups if b['status'] == DELETING}
    safe = set(doomed) - pending
    while True:
        stuck = {b for b in safe
                 if above.get(b, set()) - safe - deleting}
        if not stuck:
            return safe
        safe -= stuck


def protected(backups: list) -> set:
    """Backups holding the newest good artifact of some (host, svc, name)."""
    newest = {}
    for b in backups:
        if b['status'] != states.SUCCEEDED:
            continue
        for a in b['artifacts']:
            if a['status'] == states.AVAILABLE:
                key = (a['host'], a['service'], a['name'])
                if key not in newest or b['id'] > newest[key]:
                    newest[key] = b['id']
    return set(newest.values())


class Pruner:

    def __init__(self, conf, catalogue, dispatcher):
        self.conf = conf
        self.catalogue = catalogue
        self.dispatch = dispatcher
        self.notifications = notify.DISABLED
        #: Deletes the storage records of a backup being deleted.
        self.records = None

    def plan(self) -> list[dict]:
        """Backups the policies no longer keep, with the reason."""
        backups = self.catalogue.backups_with_artifacts()
        keep = protected(backups)
        policies = {p['name']: p for p in self.catalogue.list_policies()}
        now = rows.now()
        out = []
        by_policy = {}
        for b in backups:
            if b['status'] == DELETING:
                out.append({'id': b['id'], 'policy': b['policy'],
                            'created_at': rows.iso(b['created_at']),
                            'reason': 'deletion not finished yet'})
            elif b['policy'] in policies:
                by_policy.setdefault(b['policy'], []).append(b)
        for name, group in sorted(by_policy.items()):
            for gone in retention.expired(group, rules_of(policies[name]),
                                          now, self.conf.conductor.timezone):
                if gone['id'] in keep or self.catalogue.restores_of(
                        gone['id']):
                    continue
                created = next(b['created_at'] for b in group
                               if b['id'] == gone['id'])
                out.append({'id': gone['id'], 'policy': name,
                            'created_at': rows.iso(created),
                            'reason': gone['reason']})
        doomed = {e['id'] for e in out}
        for gone in binlogs.expired_archives(
                backups, self.catalogue.pitr_bases(), doomed):
            if gone['id'] not in doomed and not self.catalogue.restores_of(
                    gone['id']):
                out.append(gone)
        safe = chain_safe({e['id'] for e in out}, backups,
                          self.catalogue.pending_bases())
        for entry in out:
            if entry['id'] not in safe:
                LOG.info('Backup %s is expired but kept: backups that are '
                         'kept are incremental on it', entry['id'])
        return sorted((e for e in out if e['id'] in safe),
                      key=lambda x: x['id'])

    def prune(self, dry_run: bool = False) -> list[dict]:
        doomed = self.plan()
        if not dry_run:
            # Newest first: each base goes after the backups based on it.
            for entry in sorted(doomed, key=lambda e: -e['id']):
                self.delete(entry['id'], force=True)
            # What killed or cut-off writers left on the targets this
            # conductor reaches (agents clean their own as they start).
            audit.remove_leftovers(self.conf, self.conf.storage.leftover_age)
        return doomed

    def delete(self, backup_id: int, force: bool = False) -> dict:
        """Delete one backup's stored objects on their hosts."""
        backup = self.catalogue.get_backup(backup_id)
        if backup['status'] in (states.RUNNING, states.PENDING):
            raise exception.Conflict('Backup %s is still running'
                                     % backup_id)
        if self.catalogue.restores_of(backup_id):
            raise exception.Conflict('Backup %s is being restored'
                                     % backup_id)
        above, _below = self.catalogue.chain_links(backup_id)
        live = sorted(b for b in above if self.catalogue.get_backup(b)
                      ['status'] != DELETING)
        if live or backup_id in self.catalogue.pending_bases():
            raise exception.Conflict(
                'Backup %s is the base of incremental backup(s) %s: they '
                'cannot be restored without it; delete them first'
                % (backup_id, ', '.join(map(str, live)) or 'being written'))
        if not force and backup_id in protected(
                self.catalogue.backups_with_artifacts()):
            raise exception.Conflict(
                'Backup %s holds the newest good copy of at least one '
                'service or database; refusing to delete it (use --force '
                'to delete it anyway)' % backup_id)
        by_host = {}
        for a in backup['artifacts']:
            for c in audit.copies_of(self.conf, a):
                by_host.setdefault(a['host'], []).append(
                    {'target': c['target'], 'location': c['location']})
        for task in backup['tasks']:
            if task['kind'] == 'delete' and \
                    task['status'] in states.TASK_ACTIVE:
                self.catalogue.task_finished(
                    task['id'], states.FAILED, {},
                    'superseded by a new deletion of the backup')
        self.catalogue.set_backup_status(backup_id, DELETING)
        if self.records is not None:
            self.records.forget(backup)
        if not by_host:
            self._forget(backup_id)
            return {'id': backup_id, 'status': 'DELETED'}
        # The service name is what the agent serialises on: one deletion
        # per backup at a time, deletions of different backups side by side.
        self.dispatch.wave([
            dict(kind='delete', host=host, service='backup-%d' % backup_id,
                 params={'objects': objects}, backup_id=backup_id)
            for host, objects in sorted(by_host.items())])
        LOG.info('Deleting backup %s from %d host(s)', backup_id,
                 len(by_host))
        return {'id': backup_id, 'status': DELETING}

    @staticmethod
    def _deletion(backup: dict) -> str | None:
        """SUCCEEDED once every host deleted its objects, None if pending."""
        deletes = [t for t in backup['tasks'] if t['kind'] == 'delete']
        # No delete task yet: delete() is between marking it DELETING and
        # dispatching them (a base's deletion must not be taken as done
        # when a backup based on it finishes meanwhile).
        if not deletes or any(t['status'] in states.TASK_ACTIVE
                              for t in deletes):
            return None
        latest = {}
        for t in sorted(deletes, key=lambda t: t['created_at']):
            latest[t['host']] = t     # a retry supersedes a failed try
        if all(t['status'] == states.SUCCEEDED for t in latest.values()):
            return states.SUCCEEDED
        return states.FAILED

    def task_done(self, task: dict) -> None:
        """Forget a backup once every delete task succeeded."""
        outcome = self._deletion(self.catalogue.get_backup(task['backup_id']))
        if outcome == states.SUCCEEDED:
            self._forget(task['backup_id'])
        elif outcome == states.FAILED:
            LOG.warning('Backup %s: some objects could not be deleted; '
                        'the next prune retries', task['backup_id'])

    def _forget(self, backup_id: int) -> None:
        """Drop a deleted backup's rows, then any base waiting for it.

        A base deleted together with the backups on it keeps its rows
        until theirs are gone, so the catalogue never holds a chain with
        a missing link.
        """
        above, below = self.catalogue.chain_links(backup_id)
        if above:
            LOG.info('Backup %s deleted; forgotten once backup(s) %s, '
                     'based on it, are', backup_id,
                     ', '.join(map(str, sorted(above))))
            return
        self.catalogue.delete_backup_rows(backup_id)
        LOG.info('Backup %s deleted', backup_id)
        self.notifications.backup_deleted(backup_id)
        for base in sorted(below):
            backup = self.catalogue.get_backup(base)
            if backup['status'] == DELETING and \
                    self._deletion(backup) == states.SUCCEEDED:
                self._forget(base)
