"""Sends a task's reports to the conductor over RPC casts."""

from oslo_log import log as logging

from osbackup import rpc

LOG = logging.getLogger(__name__)


class ConductorReporter:
    """Adapter between the runner's reports and the conductor RPC API."""

    def __init__(self, conductor_api, host: str):
        self.api = conductor_api
        self.host = host
        self.ctxt = rpc.admin_context()

    def started(self, task: dict) -> None:
        self.api.task_started(self.ctxt, task['id'], self.host)

    def progress(self, task: dict, nbytes: int, nfiles: int) -> None:
        try:
            self.api.task_progress(self.ctxt, task['id'], self.host,
                                   nbytes, nfiles)
        except Exception as exc:
            # Progress is advisory; the work goes on and the final
            # report is what counts.
            LOG.warning('Could not report progress of %s: %s',
                        task['id'], exc)

    def finished(self, task: dict, status: str, result: dict,
                 error: str | None) -> None:
        self.api.task_finished(self.ctxt, task['id'], self.host, status,
                               result, error)
