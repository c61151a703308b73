"""Exceptions with messages meant for operators.

Every error a user can cause or an operator must act on is an
``OsbackupError``: the CLI prints its message (no traceback) and the agent
reports it as the task's structured error.
"""


class OsbackupError(Exception):
    """Base class; ``code`` is a stable machine-readable name."""

    code = 'error'

    def __init__(self, message: str = '', **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        return {'code': self.code, 'message': self.message,
                **({'details': self.details} if self.details else {})}


class InvalidInput(OsbackupError):
    code = 'invalid_input'


class NotFound(OsbackupError):
    code = 'not_found'


class Conflict(OsbackupError):
    code = 'conflict'


class ConductorUnavailable(OsbackupError):
    code = 'conductor_unavailable'


class StorageError(OsbackupError):
    code = 'storage_error'


class InsufficientSpace(StorageError):
    code = 'insufficient_space'


class ArtifactCorrupt(OsbackupError):
    code = 'artifact_corrupt'


class UnsafeArchive(OsbackupError):
    code = 'unsafe_archive'


class DumpFailed(OsbackupError):
    code = 'dump_failed'


class RestoreFailed(OsbackupError):
    code = 'restore_failed'


class ServiceControlError(OsbackupError):
    code = 'service_control_failed'


class TaskRejected(OsbackupError):
    code = 'task_rejected'
