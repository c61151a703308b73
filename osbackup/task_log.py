"""How a task is named in the logs of the agent and the conductor.

One line at INFO when a task starts and one when it ends, each naming the
operation (backup, restore or verification id), host and service, and at
the end what was stored and how long it took: enough to follow a task
across both logs with grep.
"""


def describe(task: dict) -> str:
    """``backup nova on ctl-1 (backup 12)``."""
    owner = ''
    params = task.get('params') or {}
    for key, word in (('backup_id', 'backup'), ('restore_id', 'restore'),
                      ('verification_id', 'verification')):
        value = task.get(key) or params.get(key)
        if value:
            owner = ' (%s %s)' % (word, value)
            break
    return '%s %s on %s%s' % (task.get('kind'), task.get('service'),
                              task.get('host'), owner)


def stored_bytes(result: dict | None) -> int:
    """Bytes of the artifacts a task's result holds."""
    return sum(a.get('size') or 0
               for a in (result or {}).get('artifacts') or [])
