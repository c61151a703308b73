"""RPC endpoint of the conductor: thin, delegates to the orchestrators."""

from oslo_log import log as logging
import oslo_messaging as messaging

from osbackup import exception

LOG = logging.getLogger(__name__)


class ConductorManager:
    """Endpoint for ``osbackup-conductor``; see conductor/rpcapi.py."""

    target = messaging.Target(version='1.0')

    def __init__(self, catalogue, tracker, backups, restores):
        self.catalogue = catalogue
        self.tracker = tracker
        self.backups = backups
        self.restores = restores

    def heartbeat(self, context, host, version, info):
        self.catalogue.record_heartbeat(host, version, info)

    def task_started(self, context, task_id, host):
        self.catalogue.task_started(task_id)

    def task_progress(self, context, task_id, host, nbytes, nfiles):
        self.catalogue.task_progress(task_id, nbytes, nfiles)

    def task_finished(self, context, task_id, host, status, result, error):
        self.tracker.finished(task_id, status, result, error)

    @messaging.expected_exceptions(exception.OsbackupError)
    def create_backup(self, context, hosts, services):
        return self.backups.create(hosts, services)

    @messaging.expected_exceptions(exception.OsbackupError)
    def create_restore(self, context, backup_id, hosts, services, dry_run):
        return self.restores.create(backup_id, hosts, services, dry_run)
