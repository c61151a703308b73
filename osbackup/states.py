"""State names of backups, restores, tasks and artifacts.

Operations (backups, restores, tasks) use upper-case states; stored
artifacts, being resources, use lower-case ones as cinder's backups do.
"""

PENDING = 'PENDING'
RUNNING = 'RUNNING'
SUCCEEDED = 'SUCCEEDED'
FAILED = 'FAILED'
TIMED_OUT = 'TIMED_OUT'
SKIPPED = 'SKIPPED'
#: A backup whose stored objects are being deleted.
DELETING = 'DELETING'

TASK_ACTIVE = (PENDING, RUNNING)
TASK_DONE = (SUCCEEDED, FAILED, TIMED_OUT, SKIPPED)
TASK_GOOD = (SUCCEEDED, SKIPPED)

# Artifacts
AVAILABLE = 'available'
ARTIFACT_SKIPPED = 'skipped'
ARTIFACT_FAILED = 'failed'
DELETED = 'deleted'
CORRUPT = 'corrupt'
#: Its stored objects vanished ([conductor] storage_sync_interval).
MISSING = 'missing'

# Agents
UP = 'up'
DOWN = 'down'
#: Said goodbye: stopped cleanly, down at once.
STOPPED = 'stopped'
#: Alive, but its messages are refused for their time (clock skew).
SKEWED = 'skewed'
#: A sender whose messages are refused (no key, another key).
REJECTED = 'rejected'
