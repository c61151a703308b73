"""Copy swift's ring and builder files from a backup to every swift node.

The Operations Guide asks for /etc/swift's rings and builders on every
node. The conductor picks the newest good swift backup (or the one named),
and each agent that hosts swift installs the files from it atomically.
"""

from oslo_log import log as logging

from osbackup import exception
from osbackup import states

LOG = logging.getLogger(__name__)


class RingDistributor:

    def __init__(self, conf, catalogue, dispatcher):
        self.conf = conf
        self.catalogue = catalogue
        self.dispatch = dispatcher

    def distribute(self, backup_id: int | None = None) -> dict:
        if backup_id is None:
            backup = self.catalogue.newest_good_backup('swift')
            if backup is None:
                raise exception.NotFound('No good swift backup to take the '
                                         'rings from')
        else:
            backup = self.catalogue.get_backup(backup_id)
        arts = [a for a in backup['artifacts'] if a['service'] == 'swift'
                and a['status'] == states.AVAILABLE
                and a['meta'].get('rings')]
        if not arts:
            raise exception.InvalidInput('Backup %s holds no swift rings'
                                         % backup['id'])
        source = arts[0]
        agents = self.catalogue.list_agents(
            self.conf.conductor.agent_down_time)
        hosts = sorted(a['host'] for a in agents if a['state'] == states.UP
                       and 'swift' in a['info'].get('services', []))
        if not hosts:
            raise exception.InvalidInput('No agent that is up hosts swift')
        artifact = {'id': source['id'], 'sha256': source['sha256'],
                    'copies': source['copies'] or [{
                        'target': self.conf.storage.backend,
                        'location': source['location'],
                        'sha256': source['sha256']}]}
        tasks = self.dispatch.wave([
            dict(kind='distribute_rings', host=host, service='swift',
                 params={'artifact': artifact,
                         'rings': source['meta']['rings'],
                         'backup_id': backup['id']})
            for host in hosts])
        LOG.info('Distributing swift rings of backup %s to %s',
                 backup['id'], ', '.join(hosts))
        return {'backup_id': backup['id'], 'source_host': source['host'],
                'rings': source['meta']['rings'],
                'tasks': [t['id'] for t in tasks]}

    def after_backup(self, backup: dict) -> None:
        """Policy hook: distribute after a good backup with swift rings.

        ``backup`` is the summary (no tasks, no artifacts): the backup's
        artifacts are read only when its policy distributes rings.
        """
        policy = backup.get('policy')
        if not policy:
            return
        try:
            wanted = self.catalogue.get_policy(policy)['distribute_rings']
        except exception.NotFound:
            return
        if not wanted:
            return
        backup = self.catalogue.get_backup(backup['id'])
        if any(a['service'] == 'swift' and a['meta'].get('rings')
               for a in backup['artifacts']):
            self.distribute(backup['id'])
