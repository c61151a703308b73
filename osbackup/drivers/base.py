"""The ServiceDriver interface: what one service's backup and restore are.

A driver runs on an agent, on the node that holds the service. It knows
the service's paths, databases and units; it does not know about RPC, the
catalogue or other nodes. The agent's runner hands it a ``TaskContext`` with
the storage to write to and a progress callback.
"""

import abc
import dataclasses
import os
import typing


@dataclasses.dataclass
class Artifact:
    """One stored piece of a backup, as a driver reports it."""

    name: str
    kind: str                       # 'files' or 'sql'
    location: str
    size: int
    sha256: str
    meta: dict = dataclasses.field(default_factory=dict)
    #: Storage key, so copies to other targets are stored under the same.
    key: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TaskContext:
    """What a driver needs to run one task."""

    task_id: str
    backup_id: str
    host: str
    service: str
    storage: typing.Any
    progress: typing.Callable[[int, int], None] = lambda nbytes, nfiles: None
    params: dict = dataclasses.field(default_factory=dict)
    warnings: list = dataclasses.field(default_factory=list)
    #: {stage: seconds} of the work (streams.Stopwatch), for the report.
    split: dict = dataclasses.field(default_factory=dict)

    def key(self, name: str, suffix: str) -> str:
        """Storage key of an artifact of this task.

        Named by the backup's UUID when the conductor sent one: catalogue
        ids restart in a catalogue rebuilt from storage, and a new backup
        must never be written over an older one's objects.
        """
        ref = self.params.get('backup_uuid') or self.backup_id
        return '%s/%s/%s/%s%s' % (self.host, ref, self.service, name, suffix)


class ServiceDriver(abc.ABC):
    """One OpenStack service's local backup and restore on this node.

    ``name`` equals the entry point name in ``osbackup.drivers``.
    """

    name: str = ''

    def __init__(self, conf):
        self.conf = conf
        self.root = conf.agent.root_path

    def path(self, absolute: str) -> str:
        """Resolve a service path such as /etc/nova under [agent] root_path."""
        return os.path.join(self.root, absolute.lstrip('/'))

    @abc.abstractmethod
    def is_present(self) -> bool:
        """Whether the service exists on this node (else tasks are skipped)."""

    @abc.abstractmethod
    def backup(self, ctx: TaskContext) -> list[Artifact]:
        """Write the service's artifacts to ``ctx.storage``; return them."""

    def units(self) -> list[str]:
        """Units a restore stops and starts; none by default."""
        return []

    def restorable_paths(self) -> frozenset[str]:
        """Service paths a file-set restore may replace; none by default.

        A restore refuses an artifact naming any other path.
        """
        return frozenset()

    def describe(self) -> dict:
        """Facts for the heartbeat (paths or databases found)."""
        return {}


class PhysicalRestore(abc.ABC):
    """A driver that restores a whole data directory (mariabackup).

    The restore stages a copy beside the live directory while the server
    runs, checks the server is stopped and swaps the copy in.
    """

    @abc.abstractmethod
    def datadir(self, override: str | None = None) -> str:
        """The live data directory, under the node root."""

    @abc.abstractmethod
    def stage(self, ctx: TaskContext, location: str, expected_sha256: str,
              datadir: str, dest: str) -> None:
        """Unpack, check and prepare the artifact into ``dest``."""

    @abc.abstractmethod
    def check_stopped(self, datadir: str) -> None:
        """Raise unless no server runs on ``datadir``."""


class CommandRestore(abc.ABC):
    """A driver whose artifacts a command loads into a running server.

    RabbitMQ definitions and OVN databases: an orchestrated restore checks
    each artifact in its prepare phase, and in its load_db phase saves
    what it replaces, then loads the artifact; a rollback loads the saved
    copy back. ``artifact`` is the plan's dict of a catalogue artifact
    (name, location, sha256, meta).
    """

    @abc.abstractmethod
    def check_artifact(self, ctx: TaskContext, artifact: dict,
                       force: bool) -> None:
        """Raise an OsbackupError unless the artifact can be loaded."""

    @abc.abstractmethod
    def save_current(self, ctx: TaskContext,
                     artifact: dict) -> Artifact | None:
        """Store what loading ``artifact`` replaces; None if nothing."""

    @abc.abstractmethod
    def restore_artifact(self, ctx: TaskContext, artifact: dict,
                         force: bool) -> None:
        """Load the artifact (its sha256 checked again)."""
