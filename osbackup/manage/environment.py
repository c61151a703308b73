"""What osbackup-manage talks to: the catalogue and the conductor.

With a ``transport_url`` the conductor is a separate service reached over
RPC. Without one, osbackup is all-in-one: this process starts a conductor
and an agent for the local node over the in-memory transport, so a single
command backs up the node it runs on.
"""

import os

from oslo_log import log as logging
import oslo_messaging as messaging

from osbackup.conductor import rpcapi as conductor_rpcapi
from osbackup.db import api as db_api
from osbackup import exception
from osbackup import rpc
from osbackup import version

LOG = logging.getLogger(__name__)


class Environment:
    """Lazily opened catalogue and conductor client for one command."""

    def __init__(self, conf):
        self.conf = conf
        self.all_in_one = rpc.is_all_in_one(conf)
        self._catalogue = None
        self._services = []
        self._conductor = None

    @property
    def catalogue(self) -> db_api.Catalogue:
        if self._catalogue is None:
            if self.all_in_one:
                os.makedirs(self.conf.state_path, mode=0o700, exist_ok=True)
            self._catalogue = db_api.Catalogue.from_conf(self.conf)
            if self.all_in_one:
                # Nothing else will ever sync the local SQLite catalogue.
                self._catalogue.sync()
            else:
                self._catalogue.check_schema()
        return self._catalogue

    @property
    def conductor(self) -> conductor_rpcapi.ConductorAPI:
        if self._conductor is None:
            rpc.init(self.conf)
            if self.all_in_one:
                self._start_local_services()
            self._conductor = conductor_rpcapi.ConductorAPI(self.conf)
        return self._conductor

    def _start_local_services(self):
        from osbackup.agent import service as agent_service
        from osbackup.conductor import service as conductor_service
        conductor = conductor_service.ConductorService(self.conf,
                                                       self.catalogue)
        conductor.start()
        self._services.append(conductor)
        agent = agent_service.AgentService(self.conf)
        agent.start()
        self._services.append(agent)
        # Record the local agent now rather than racing its first
        # heartbeat through the bus.
        self.catalogue.record_heartbeat(self.conf.host,
                                        version.version_string(),
                                        agent.info())

    def call(self, method: str, **kwargs):
        """Call the conductor; turn transport errors into operator errors."""
        try:
            return getattr(self.conductor, method)(rpc.admin_context(),
                                                   **kwargs)
        except messaging.MessagingTimeout:
            raise exception.ConductorUnavailable(
                'No osbackup-conductor answered within %d s: is one running '
                'and connected to the broker?'
                % self.conf.conductor.rpc_timeout)
        except messaging.MessageDeliveryFailure as exc:
            raise exception.ConductorUnavailable(
                'Cannot reach the message broker: %s' % exc)

    def close(self):
        for svc in reversed(self._services):
            try:
                svc.stop()
            except Exception:
                LOG.exception('Error stopping %s', svc)
        self._services = []
        if self._conductor is not None:
            rpc.cleanup()
            self._conductor = None
