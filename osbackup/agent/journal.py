"""The agent's task journal: idempotency and crash recovery.

oslo.messaging acknowledges a cast before running it, so a killed agent
loses the task, and a resent task must not run twice. Each task accepted by
this agent gets a small fsynced JSON file; a redelivered task id finds its
earlier result here, and at start-up any task still marked running is known
to have died with the previous process.
"""

import json
import os
import time

from osbackup import durable

RUNNING = 'running'
DONE = 'done'


class Journal:
    """One file per task under ``<state_path>/agent/tasks``."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)

    def _file(self, task_id):
        if not task_id or '/' in task_id or task_id.startswith('.'):
            raise ValueError('bad task id %r' % task_id)
        return os.path.join(self.path, task_id + '.json')

    def _write(self, task_id, record):
        durable.write_json(self._file(task_id), record)

    def get(self, task_id: str) -> dict | None:
        try:
            with open(self._file(task_id)) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def begin(self, task: dict) -> dict | None:
        """Record a task as running; return the earlier record if seen."""
        previous = self.get(task['id'])
        if previous is not None:
            return previous
        self._write(task['id'], {'state': RUNNING, 'task': task,
                                 'since': time.time()})
        return None

    def finish(self, task: dict, report: dict) -> None:
        self._write(task['id'], {'state': DONE, 'task': task,
                                 'report': report, 'since': time.time(),
                                 'reported': False})

    def reported(self, task_id: str) -> None:
        """Note that the task's result reached the broker."""
        record = self.get(task_id)
        if record is not None and record.get('reported') is False:
            self._write(task_id, dict(record, reported=True))

    def unreported(self) -> list[dict]:
        """Finished tasks whose result a previous process did not send."""
        return [r for r in self._records()
                if r.get('state') == DONE and r.get('reported') is False]

    def interrupted(self) -> list[dict]:
        """Tasks left running by a previous agent process."""
        return [r['task'] for r in self._records()
                if r.get('state') == RUNNING]

    def _records(self):
        for name in sorted(os.listdir(self.path)):
            if name.endswith('.json'):
                record = self.get(name[:-5])
                if record:
                    yield record

    def prune(self, max_age: float) -> None:
        """Forget finished tasks older than ``max_age`` seconds."""
        limit = time.time() - max_age
        for name in os.listdir(self.path):
            path = os.path.join(self.path, name)
            record = self.get(name[:-5]) if name.endswith('.json') else None
            if record and record.get('state') == DONE and \
                    record.get('since', 0) < limit:
                os.unlink(path)
