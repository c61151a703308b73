"""The UnitManager interface: stop, start and check a node's units.

Only restores use it: backups never stop a service.
"""

import abc
import subprocess

from osbackup import exception


class UnitManager(abc.ABC):
    """A way to control units (``osbackup.unit_managers`` namespace)."""

    name: str = ''

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def exists(self, unit: str) -> bool:
        """Whether the unit is installed on this node."""

    @abc.abstractmethod
    def start(self, unit: str) -> None:
        """Start a unit; raise ServiceControlError on failure."""

    @abc.abstractmethod
    def stop(self, unit: str) -> None:
        """Stop a unit; raise ServiceControlError on failure."""

    @abc.abstractmethod
    def is_active(self, unit: str) -> bool:
        """Whether the unit is running."""


def run(argv: list, timeout: int, what: str) -> subprocess.CompletedProcess:
    """Run a control command (argv list, never a shell) with a timeout."""
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise exception.ServiceControlError(
            '%s did not finish within %d s' % (what, timeout))
    except OSError as exc:
        raise exception.ServiceControlError('%s could not run: %s'
                                            % (what, exc))


def check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or '').strip()[:500]
        raise exception.ServiceControlError(
            '%s failed (exit %d)%s' % (what, proc.returncode,
                                       ': ' + detail if detail else ''))
