"""RPC endpoint of the conductor: thin, delegates to the orchestrators."""

import time

from oslo_log import log as logging
import oslo_messaging as messaging

from osbackup import exception
from osbackup import signing

LOG = logging.getLogger(__name__)


class ConductorManager:
    """Endpoint for ``osbackup-conductor``; see conductor/rpcapi.py."""

    target = messaging.Target(version='1.9')

    def __init__(self, svc):
        self.svc = svc

    # Agent reports: queued, then written in batches (recorder.py).

    def heartbeat(self, context, host, version, info):
        self.svc.recorder.heartbeat(
            host, version, info,
            signing.clock_offset(getattr(context, 'osbackup_seal', None)))

    def goodbye(self, context, host):
        LOG.info('Agent %s stopped (said goodbye)', host)
        self.svc.recorder.goodbye(host)

    def hello(self, context, host):
        """Prove to an agent that its messages are accepted; our clock."""
        return {'time': time.time()}

    def task_started(self, context, task_id, host):
        self.svc.recorder.started(task_id)

    def task_progress(self, context, task_id, host, nbytes, nfiles):
        self.svc.recorder.progress(task_id, nbytes, nfiles)

    def task_finished(self, context, task_id, host, status, result, error):
        self.svc.recorder.finished(task_id, status, result, error)

    # Conductors' probes of their report queue (conductor/hearing.py)

    def mark(self, context):
        """Answer a probe: it came through the queue the reports take."""
        return True

    # Requests from osbackup-manage

    @messaging.expected_exceptions(exception.OsbackupError)
    def create_backup(self, context, hosts, services, targets=None,
                      policy=None, full=False):
        if policy:
            return self.svc.policies.run_now(policy, hosts, services,
                                             targets, full=full)
        return self.svc.backups.create(hosts, services, targets=targets,
                                       full=full)

    @messaging.expected_exceptions(exception.OsbackupError)
    def create_restore(self, context, backup_id, hosts, services, dry_run,
                       map_host=None, force=False, point=None,
                       skip_accounts=False):
        return self.svc.restores.create(backup_id, hosts, services, dry_run,
                                        map_host, force=force, point=point,
                                        skip_accounts=skip_accounts)

    @messaging.expected_exceptions(exception.OsbackupError)
    def recover_cluster(self, context, dry_run):
        return self.svc.restores.recover_cluster(dry_run)

    @messaging.expected_exceptions(exception.OsbackupError)
    def verify_backup(self, context, backup_id, deep):
        return self.svc.verifier.create(backup_id, deep)

    @messaging.expected_exceptions(exception.OsbackupError)
    def prune_backups(self, context, dry_run):
        return self.svc.pruner.prune(dry_run)

    @messaging.expected_exceptions(exception.OsbackupError)
    def delete_backup(self, context, backup_id, force):
        return self.svc.pruner.delete(backup_id, force)

    @messaging.expected_exceptions(exception.OsbackupError)
    def distribute_rings(self, context, backup_id):
        return self.svc.rings.distribute(backup_id)
