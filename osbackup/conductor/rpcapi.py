"""Client side of the conductor RPC API (agents and osbackup-manage)."""

import oslo_messaging as messaging
from oslo_messaging.rpc import dispatcher as rpc_dispatcher

from osbackup import exception
from osbackup import rpc


class ConductorAPI:
    """Reports from agents (casts) and requests from osbackup-manage (calls).

    API version history:
        1.0 - Initial version: heartbeat, task_started, task_progress,
              task_finished, create_backup, create_restore
        1.1 - Added verify_backup, prune_backups, delete_backup,
              distribute_rings; targets and policy in create_backup
        1.2 - full in create_backup (no incremental file sets)
        1.3 - Added mark (conductors probing their report queue)
        1.4 - Added goodbye (an agent stopping) and hello (an agent
              checking it is heard, and the conductor's clock)
        1.5 - map_host in create_restore (restore a host onto another)
        1.6 - force in create_restore (load an OVN database of another
              schema version)
        1.7 - point in create_restore (a point-in-time restore)
        1.8 - Added recover_cluster (start a Galera cluster after an
              outage)
        1.9 - skip_accounts in create_restore (leave the database
              server's accounts and grants alone)
    """

    RPC_API_VERSION = '1.9'

    def __init__(self, conf):
        self.client = rpc.get_client(
            rpc.CONDUCTOR_TOPIC, self.RPC_API_VERSION,
            version_cap=conf.upgrade_levels.conductor,
            timeout=conf.conductor.rpc_timeout)

    # Agent reports: casts, so a slow conductor never blocks an agent.

    def heartbeat(self, ctxt, host: str, version: str, info: dict) -> None:
        # Advisory and repeated: never wait for a broker that is away.
        self.client.prepare(version='1.0', retry=0).cast(
            ctxt, 'heartbeat', host=host, version=version, info=info)

    def goodbye(self, ctxt, host: str, retry: int = 1) -> None:
        """The agent on ``host`` stops cleanly: it is down from now.

        Sent once, with a short retry: a stop must not wait for a broker
        that is away (the agent then goes down after agent_down_time).
        """
        if self.client.can_send_version('1.4'):
            self.client.prepare(version='1.4', retry=retry).cast(
                ctxt, 'goodbye', host=host)

    def can_hello(self) -> bool:
        """Whether conductors may be asked hello ([upgrade_levels])."""
        return self.client.can_send_version('1.4')

    def hello(self, ctxt, host: str, timeout: float) -> dict:
        """A signed round trip: a conductor accepts this agent's messages.

        Returns ``{'time': <the conductor's clock>}``. Raises
        signing.MessageRejected (the conductor refuses the seal: key or
        clock), messaging.MessagingTimeout (nobody answered) or a
        transport error; never retries a connection.
        """
        return self.client.prepare(version='1.4', timeout=timeout,
                                   retry=0).call(ctxt, 'hello', host=host)

    # ``retry`` bounds oslo.messaging's reconnect attempts (None: for
    # ever); ``at_least_once`` makes the broker refuse a report no queue
    # can receive instead of dropping it (agent/reporter.py).

    def task_started(self, ctxt, task_id: str, host: str,
                     retry: int | None = None,
                     at_least_once: bool = False) -> None:
        self._report(retry, at_least_once).cast(
            ctxt, 'task_started', task_id=task_id, host=host)

    def task_progress(self, ctxt, task_id: str, host: str, nbytes: int,
                      nfiles: int, retry: int | None = None) -> None:
        self._report(retry, False).cast(
            ctxt, 'task_progress', task_id=task_id, host=host,
            nbytes=nbytes, nfiles=nfiles)

    def task_finished(self, ctxt, task_id: str, host: str, status: str,
                      result: dict, error: str | None,
                      retry: int | None = None,
                      at_least_once: bool = False) -> None:
        self._report(retry, at_least_once).cast(
            ctxt, 'task_finished', task_id=task_id, host=host,
            status=status, result=result, error=error)

    def _report(self, retry, at_least_once):
        options = messaging.TransportOptions(at_least_once=True) \
            if at_least_once else None
        return self.client.prepare(version='1.0', retry=retry,
                                   transport_options=options)

    def mark(self, ctxt, timeout: float) -> None:
        """A round trip through the conductors' shared report queue.

        Answered by whichever conductor consumes the queue, after every
        report queued before it; raises when none answers in ``timeout``
        seconds or the broker is unreachable (no reconnect attempts:
        the caller simply probes again later). A conductor that predates
        the method answers with an error, which proves as much.
        """
        version = '1.3' if self.client.can_send_version('1.3') else '1.0'
        try:
            self.client.prepare(version=version, timeout=timeout,
                                retry=0).call(ctxt, 'mark')
        except (messaging.RemoteError, rpc_dispatcher.NoSuchMethod,
                rpc_dispatcher.UnsupportedVersion):
            pass

    # Requests from osbackup-manage: calls, the answer is needed.

    def create_backup(self, ctxt, hosts: list, services: list,
                      targets: list | None = None,
                      policy: str | None = None,
                      full: bool = False) -> dict:
        if full:
            return self._call_at('1.2', ctxt, 'create_backup', hosts=hosts,
                                 services=services, targets=targets,
                                 policy=policy, full=True)
        if targets or policy:
            return self._call_1_1(ctxt, 'create_backup', hosts=hosts,
                                  services=services, targets=targets,
                                  policy=policy)
        return self.client.prepare(version='1.0').call(
            ctxt, 'create_backup', hosts=hosts, services=services)

    def create_restore(self, ctxt, backup_id: int, hosts: list,
                       services: list, dry_run: bool,
                       map_host: dict | None = None,
                       force: bool = False,
                       point: dict | None = None,
                       skip_accounts: bool = False) -> dict:
        if skip_accounts:
            return self._call_at('1.9', ctxt, 'create_restore',
                                 backup_id=backup_id, hosts=hosts,
                                 services=services, dry_run=dry_run,
                                 map_host=map_host or None, force=force,
                                 point=point, skip_accounts=True)
        if point:
            return self._call_at('1.7', ctxt, 'create_restore',
                                 backup_id=backup_id, hosts=hosts,
                                 services=services, dry_run=dry_run,
                                 map_host=map_host or None, force=force,
                                 point=point)
        if force:
            return self._call_at('1.6', ctxt, 'create_restore',
                                 backup_id=backup_id, hosts=hosts,
                                 services=services, dry_run=dry_run,
                                 map_host=map_host or None, force=True)
        if map_host:
            return self._call_at('1.5', ctxt, 'create_restore',
                                 backup_id=backup_id, hosts=hosts,
                                 services=services, dry_run=dry_run,
                                 map_host=map_host)
        return self.client.prepare(version='1.0').call(
            ctxt, 'create_restore', backup_id=backup_id, hosts=hosts,
            services=services, dry_run=dry_run)

    def recover_cluster(self, ctxt, dry_run: bool) -> dict:
        return self._call_at('1.8', ctxt, 'recover_cluster', dry_run=dry_run)

    def verify_backup(self, ctxt, backup_id: int, deep: bool) -> dict:
        return self._call_1_1(ctxt, 'verify_backup', backup_id=backup_id,
                              deep=deep)

    def prune_backups(self, ctxt, dry_run: bool) -> list:
        return self._call_1_1(ctxt, 'prune_backups', dry_run=dry_run)

    def delete_backup(self, ctxt, backup_id: int, force: bool) -> dict:
        return self._call_1_1(ctxt, 'delete_backup', backup_id=backup_id,
                              force=force)

    def distribute_rings(self, ctxt, backup_id: int | None) -> dict:
        return self._call_1_1(ctxt, 'distribute_rings', backup_id=backup_id)

    def _call_1_1(self, ctxt, method, **kwargs):
        return self._call_at('1.1', ctxt, method, **kwargs)

    def _call_at(self, version, ctxt, method, **kwargs):
        if not self.client.can_send_version(version):
            raise exception.ConductorUnavailable(
                '%s needs conductors at RPC API %s; [upgrade_levels] '
                'conductor caps it lower' % (method, version))
        return self.client.prepare(version=version).call(ctxt, method,
                                                         **kwargs)
