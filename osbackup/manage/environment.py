"""What osbackup-manage talks to: the catalogue and the conductor.

With a ``transport_url`` the conductor is a separate service reached over
RPC. Without one, osbackup is all-in-one: this process starts a conductor
and an agent for the local node over the in-memory transport, so a single
command backs up the node it runs on.
"""

import os
import typing

from oslo_config import cfg
from oslo_log import log as logging

from osbackup.cmd import common
from osbackup import deployment
from osbackup import exception

if typing.TYPE_CHECKING:
    from osbackup.conductor import rpcapi as conductor_rpcapi
    from osbackup.db import api as db_api

LOG = logging.getLogger(__name__)

#: Seconds closing the broker connections may take before the command
#: exits anyway (they retry a vanished broker for a long time).
CLOSE_TIMEOUT = 5


def all_in_one_notice(files: list) -> str:
    """The line saying osbackup-manage runs all-in-one, and why."""
    if files:
        why = 'no transport_url in %s' % ', '.join(files)
    else:
        why = 'no config file found in %s (osbackup.conf)' % ', '.join(
            common.SEARCHED)
    return ('all-in-one mode: %s; this command runs a conductor and an '
            'agent for this node itself. Give --config-file (or set '
            'transport_url) to manage a fleet.' % why)


def _connection_set(conf) -> bool:
    where = conf.get_location('connection', 'database').location
    return where not in (cfg.Locations.opt_default,
                         cfg.Locations.set_default)


class Environment:
    """Lazily opened catalogue and conductor client for one command."""

    def __init__(self, conf):
        self.conf = conf
        self.all_in_one = deployment.is_all_in_one(conf)
        self._catalogue = None
        self._services = []
        self._conductor = None
        #: The light catalogue once opened; False once found unusable.
        self._light = None

    def notice(self) -> str | None:
        """What the operator must know about the mode, or None."""
        if not self.all_in_one:
            return None
        return all_in_one_notice(list(self.conf.config_file or []) +
                                 list(self.conf.config_dir or []))

    def open_database(self) -> 'db_api.Catalogue':
        """The catalogue named by the config, schema unchecked."""
        # SQLAlchemy and the models load only for commands that use them.
        from osbackup.db import api as db_api
        if self.all_in_one:
            os.makedirs(self.conf.state_path, mode=0o700, exist_ok=True)
        elif not _connection_set(self.conf):
            # The all-in-one SQLite default would be a new, empty
            # catalogue: not the fleet's.
            raise exception.InvalidInput(
                '[database] connection is not set in %s: osbackup-manage '
                'needs the catalogue database of the conductor (is this an '
                'agent\'s config?)' % (', '.join(self.conf.config_file)
                                       or 'the configuration'))
        return db_api.Catalogue.from_conf(self.conf)

    @property
    def catalogue(self) -> 'db_api.Catalogue':
        if self._catalogue is None:
            catalogue = self.open_database()
            if self.all_in_one:
                # Nothing else will ever sync the local SQLite catalogue.
                catalogue.sync()
            else:
                catalogue.check_schema()
            self._catalogue = catalogue
        return self._catalogue

    def read_catalogue(self):
        """The catalogue for a command that only lists agents.

        A fleet's SQLite or PyMySQL catalogue is read over the plain DB-API
        (db/light.py), which starts in a fraction of the full catalogue's
        time; anything else, or any trouble, takes the full catalogue.
        """
        if self._light is None and self._catalogue is None \
                and not self.all_in_one and _connection_set(self.conf):
            from osbackup.db import light
            self._light = light.LightCatalogue.open(
                self.conf.database.connection) or False
        return self._light or self.catalogue

    def agent_roots(self) -> dict:
        """{host: [agent] root_path} of the agents the catalogue knows."""
        from osbackup.manage import paths
        return paths.agent_roots(self.catalogue.list_agents(
            self.conf.conductor.agent_down_time))

    @property
    def conductor(self) -> 'conductor_rpcapi.ConductorAPI':
        # oslo.messaging loads only for the commands that talk to the
        # conductor: most only read the catalogue.
        from osbackup.conductor import rpcapi as conductor_rpcapi
        from osbackup.manage import broker
        from osbackup import rpc
        if self._conductor is None:
            common.messaging_options(self.conf)
            rpc.init(self.conf)
            if self.all_in_one:
                self._start_local_services()
            else:
                broker.connect(rpc.TRANSPORT, self.conf.transport_url,
                               self.conf.manage.broker_timeout)
            self._conductor = conductor_rpcapi.ConductorAPI(self.conf)
        return self._conductor

    def _start_local_services(self):
        from osbackup.agent import service as agent_service
        from osbackup.conductor import service as conductor_service
        from osbackup import version
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
        # Loaded only by the commands that call the conductor.
        from osbackup import rpc
        import oslo_messaging as messaging
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
        finally:
            if not self.all_in_one:
                # The rest of the command reads the catalogue: holding no
                # broker connection, it neither logs a broker outage nor
                # waits for one at exit.
                self._close_transport()

    def close(self):
        if self._light:
            self._light.close()
        self._light = None
        for svc in reversed(self._services):
            try:
                svc.stop()
            except Exception:
                LOG.exception('Error stopping %s', svc)
        self._services = []
        self._close_transport()

    def _close_transport(self):
        if self._conductor is None:
            return
        self._conductor = None
        from osbackup import rpc
        if not rpc.cleanup_within(CLOSE_TIMEOUT):
            LOG.debug('Broker connections still closing after %d s; '
                      'exiting anyway', CLOSE_TIMEOUT)
