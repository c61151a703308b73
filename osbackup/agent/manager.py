"""RPC endpoint of the agent: thin, hands tasks to the runner's pool."""

import futurist
from oslo_log import log as logging
import oslo_messaging as messaging

from osbackup import exception

LOG = logging.getLogger(__name__)


class AgentManager:
    """Endpoint for ``osbackup-agent.<host>``; see agent/rpcapi.py."""

    target = messaging.Target(version='1.0')

    def __init__(self, runner, max_workers: int):
        self.runner = runner
        self._pool = futurist.ThreadPoolExecutor(max_workers=max_workers)

    def run_task(self, context, task):
        """Accept a task and run it in the background."""
        try:
            self.runner.check(task)
        except exception.TaskRejected as exc:
            LOG.warning('Rejected task %s: %s', task.get('id'), exc.message)
            self.runner.reporter.finished(task, status='FAILED', result={},
                                          error=exc.message)
            return
        if not self.runner.accept(task):
            return
        LOG.info('Task %s accepted: %s %s', task['id'], task['kind'],
                 task['service'])
        self._pool.submit(self.runner.run, task)

    def stop(self) -> None:
        self.runner.stopping.set()
        self._pool.shutdown(wait=True)
