"""Restore tests: re-read every copy of a backup, optionally deeply.

Each artifact's host re-reads its copies (local storage is only readable
there) and checks their checksums; ``deep`` also unpacks file sets against
their manifest and loads SQL dumps into a scratch schema. The result is
recorded per backup, so ``backup list`` shows when it was last proven.
"""

from oslo_log import log as logging

from osbackup.conductor import notify
from osbackup import exception
from osbackup import states

LOG = logging.getLogger(__name__)


class VerifyOrchestrator:

    def __init__(self, conf, catalogue, dispatcher):
        self.conf = conf
        self.catalogue = catalogue
        self.dispatch = dispatcher
        self.notifications = notify.DISABLED

    def create(self, backup_id: int, deep: bool) -> dict:
        backup = self.catalogue.get_backup(backup_id)
        arts = [a for a in backup['artifacts']
                if a['status'] in (states.AVAILABLE, states.CORRUPT)]
        if not arts:
            raise exception.InvalidInput('Backup %s has no stored artifact '
                                         'to verify' % backup_id)
        # An incremental file set restores only with its bases: prove them
        # too, or a backup would pass whose restore must fail.
        ids = {a['id'] for a in arts}
        for chain in self.catalogue.artifact_chains(
                [a['id'] for a in arts if a.get('parent_id')]).values():
            for base in chain:
                if base['id'] not in ids:
                    ids.add(base['id'])
                    arts.append(base)
        ver = self.catalogue.create_verification(backup_id, deep)
        by_host = {}
        for a in arts:
            copies = a['copies'] or [{'target': 'local',
                                      'location': a['location'],
                                      'sha256': a['sha256']}]
            by_host.setdefault(a['host'], []).append({
                'id': a['id'], 'name': a['name'], 'kind': a['kind'],
                'service': a['service'], 'sha256': a['sha256'],
                'meta': a['meta'], 'copies': copies})
        self.dispatch.wave([
            dict(kind='verify', host=host, service='verify-%d' % ver['id'],
                 params={'artifacts': items, 'deep': deep,
                         'backup_id': backup_id},
                 verification_id=ver['id'])
            for host, items in sorted(by_host.items())])
        LOG.info('Verification %s of backup %s on %d host(s)%s', ver['id'],
                 backup_id, len(by_host), ' (deep)' if deep else '')
        return self.catalogue.get_verification(ver['id'])

    def task_done(self, task: dict) -> None:
        summary = self.catalogue.finish_verification_if_done(
            task['verification_id'])
        if summary:
            LOG.info('Verification %s ended %s', task['verification_id'],
                     summary['status'])
            self.notifications.verify_ended(dict(
                summary, backup_id=(task.get('params') or {}).get(
                    'backup_id')))
