"""oslo.messaging notifications of the conductor, with versioned payloads.

The events every cloud's monitoring already consumes from OpenStack
services, on the standard notifications topic and driver options
(``[oslo_messaging_notifications] driver``, ``topics``,
``transport_url``); off while no driver is set. Payloads follow nova's
versioned notifications: an object name, a namespace, a version and the
data, so consumers can tell a changed payload from a new one.

Sending never fails the operation that is notified: a broker that cannot
take a notification costs a warning, not a backup.
"""

import time

from oslo_log import log as logging
import oslo_messaging as messaging
from oslo_messaging import opts as messaging_opts

from osbackup.db import rows
from osbackup import rpc

LOG = logging.getLogger(__name__)

NAMESPACE = 'osbackup'

BACKUP_CREATE = 'backup.create'
RESTORE_CREATE = 'restore.create'
BACKUP_VERIFY = 'backup.verify'
BACKUP_DELETE = 'backup.delete'
AGENT_DOWN = 'agent.down'


class Payload:
    """A versioned notification payload (nova.notifications.objects)."""

    #: Bump the minor version when adding a field, the major one when
    #: changing or removing one.
    VERSION = '1.0'
    FIELDS = ()

    def __init__(self, **data):
        unknown = set(data) - set(self.FIELDS)
        if unknown:
            raise TypeError('%s has no field %s' % (
                type(self).__name__, ', '.join(sorted(unknown))))
        self.data = {name: data.get(name) for name in self.FIELDS}

    def to_primitive(self) -> dict:
        prefix = NAMESPACE + '_object.'
        return {prefix + 'name': type(self).__name__,
                prefix + 'namespace': NAMESPACE,
                prefix + 'version': self.VERSION,
                prefix + 'data': self.data}


class BackupPayload(Payload):
    FIELDS = ('id', 'uuid', 'status', 'policy', 'hosts', 'services',
              'targets', 'size', 'artifact_count', 'created_at',
              'finished_at', 'duration', 'error')


class RestorePayload(Payload):
    FIELDS = ('id', 'backup_id', 'status', 'hosts', 'services',
              'created_at', 'finished_at', 'duration', 'error')


class VerifyPayload(Payload):
    FIELDS = ('id', 'backup_id', 'deep', 'status', 'problems',
              'finished_at', 'error')


class DeletePayload(Payload):
    FIELDS = ('id', 'uuid', 'status', 'reason')


class AgentPayload(Payload):
    FIELDS = ('host', 'version', 'last_heartbeat', 'services')


def _duration(row: dict) -> float | None:
    return rows.seconds_between(row.get('created_at'), row.get('finished_at'))


def _size(backup: dict) -> tuple[int | None, int | None]:
    if 'artifacts' not in backup:
        return backup.get('size'), backup.get('artifact_count')
    arts = [a for a in backup['artifacts'] or []
            if a.get('status') == 'available']
    return sum(a.get('size') or 0 for a in arts), len(arts)


def backup_payload(backup: dict) -> BackupPayload:
    size, count = _size(backup)
    return BackupPayload(
        id=backup['id'], uuid=backup.get('uuid'), status=backup['status'],
        policy=backup.get('policy'), hosts=backup.get('hosts'),
        services=backup.get('services') or [],
        targets=backup.get('targets'), size=size, artifact_count=count,
        created_at=backup.get('created_at'),
        finished_at=backup.get('finished_at'), duration=_duration(backup),
        error=backup.get('error'))


def restore_payload(restore: dict) -> RestorePayload:
    return RestorePayload(
        id=restore['id'], backup_id=restore['backup_id'],
        status=restore['status'],
        hosts=sorted((restore.get('plan') or {}).get('hosts') or
                     restore.get('hosts') or []),
        services=restore.get('services') or [],
        created_at=restore.get('created_at'),
        finished_at=restore.get('finished_at'),
        duration=_duration(restore), error=restore.get('error'))


def register_opts(conf) -> None:
    """oslo.messaging's [oslo_messaging_notifications] options."""
    for group, opts in messaging_opts.list_opts():
        if group == 'oslo_messaging_notifications':
            conf.register_opts(opts, group=group)


class Notifications:
    """Sends the conductor's events; a no-op without a driver."""

    def __init__(self, conf, notifier=None):
        self.conf = conf
        self._notifier = notifier
        if conf is not None:
            register_opts(conf)
        if notifier is None and conf is not None and \
                conf.oslo_messaging_notifications.driver:
            transport = messaging.get_notification_transport(conf)
            self._notifier = messaging.Notifier(
                transport, publisher_id='osbackup-conductor.%s' % conf.host)
            # A notification must not hold a backup up: bounded retries.
            self._notifier = self._notifier.prepare(retry=3)

    @property
    def enabled(self) -> bool:
        return self._notifier is not None

    def emit(self, event_type: str, payload: Payload,
             error: bool = False) -> None:
        if self._notifier is None:
            return
        send = self._notifier.error if error else self._notifier.info
        started = time.monotonic()
        try:
            send(rpc.admin_context(), event_type, payload.to_primitive())
        except Exception as exc:
            LOG.warning('Could not send notification %s after %.1f s: %s',
                        event_type, time.monotonic() - started, exc)

    def _ended(self, action: str, ok: bool, payload: Payload) -> None:
        """``<action>.end`` at INFO on success, ``<action>.error`` else."""
        self.emit(action + ('.end' if ok else '.error'), payload,
                  error=not ok)

    # -- the events ------------------------------------------------------

    def backup_started(self, backup: dict) -> None:
        self.emit(BACKUP_CREATE + '.start', backup_payload(backup))

    def backup_ended(self, backup: dict) -> None:
        self._ended(BACKUP_CREATE, backup['status'] == 'SUCCEEDED',
                    backup_payload(backup))

    def restore_started(self, restore: dict) -> None:
        self.emit(RESTORE_CREATE + '.start', restore_payload(restore))

    def restore_ended(self, restore: dict) -> None:
        self._ended(RESTORE_CREATE, restore['status'] == 'SUCCEEDED',
                    restore_payload(restore))

    def verify_ended(self, verification: dict) -> None:
        ok = verification['status'] == 'OK'
        problems = verification.get('problems')
        self._ended(BACKUP_VERIFY, ok, VerifyPayload(
            id=verification.get('id') or verification.get('verification_id'),
            backup_id=verification.get('backup_id'),
            deep=verification.get('deep'),
            status=verification['status'],
            problems=len(problems) if isinstance(problems, list)
            else problems,
            finished_at=verification.get('finished_at') or
            verification.get('at'),
            error=None if ok else 'verification found problems'))

    def backup_deleted(self, backup_id: int, reason: str | None = None,
                       uuid: str | None = None) -> None:
        self.emit(BACKUP_DELETE + '.end', DeletePayload(
            id=backup_id, uuid=uuid, status='DELETED', reason=reason))

    def agent_down(self, agent: dict) -> None:
        self.emit(AGENT_DOWN, AgentPayload(
            host=agent['host'], version=agent.get('version'),
            last_heartbeat=agent.get('last_heartbeat'),
            services=(agent.get('info') or {}).get('services')),
            error=True)


#: What orchestrators hold until the service gives them its own.
DISABLED = Notifications(None)


class AgentWatch:
    """Periodic: notify ``agent.down`` once when an agent stops beating.

    The last states seen are kept in memory: an agent already down when
    the conductor starts is not announced (its down event was sent by
    whoever saw it go), and with several conductors each one that sees the
    change sends it.
    """

    def __init__(self, catalogue, notifications, down_after: int):
        self.catalogue = catalogue
        self.notifications = notifications
        self.down_after = down_after
        self._state = None

    def check(self) -> None:
        agents = self.catalogue.list_agents(self.down_after)
        state = {a['host']: a['state'] for a in agents}
        if self._state is not None:
            for agent in agents:
                if agent['state'] == 'down' and \
                        self._state.get(agent['host']) == 'up':
                    LOG.warning('Agent %s went down (last heartbeat %s)',
                                agent['host'], agent['last_heartbeat'])
                    self.notifications.agent_down(agent)
        self._state = state
