"""The conductor service: RPC server plus the periodic deadline checker."""

from oslo_log import log as logging

from osbackup.agent import rpcapi as agent_rpcapi
from osbackup.conductor import backups as backups_mod
from osbackup.conductor import manager as manager_mod
from osbackup.conductor import restores as restores_mod
from osbackup.conductor import tasks as tasks_mod
from osbackup.db import api as db_api
from osbackup import rpc
from osbackup import service
from osbackup import version

LOG = logging.getLogger(__name__)


class ConductorService(service.RPCService):
    """Listens on ``osbackup-conductor`` (shared by every conductor)."""

    def __init__(self, conf, catalogue=None):
        super().__init__()
        self.conf = conf
        self.catalogue = catalogue or db_api.Catalogue.from_conf(conf)
        self.catalogue.check_schema()
        agent_api = agent_rpcapi.AgentAPI(conf)
        self.backups = backups_mod.BackupOrchestrator(conf, self.catalogue,
                                                      agent_api)
        self.restores = restores_mod.RestoreOrchestrator(
            conf, self.catalogue, agent_api)
        self.tracker = tasks_mod.TaskTracker(conf, self.catalogue,
                                             self.backups, self.restores)
        self.manager = manager_mod.ConductorManager(
            self.catalogue, self.tracker, self.backups, self.restores)

    def start(self):
        LOG.info('Starting osbackup-conductor %s on %s',
                 version.version_string(), self.conf.host)
        self.start_rpc(rpc.get_server(rpc.CONDUCTOR_TOPIC, self.conf.host,
                                      [self.manager]))
        self.add_timer(self.conf.conductor.periodic_interval,
                       self.tracker.check_deadlines, 'check-deadlines')
