"""After a full Galera outage: each member's last position, and who starts.

The building blocks of a cluster recovery, on one member's stopped data
directory: its position from ``grastate.dat``, or, when a crash left
seqno -1 there, from ``mariadbd --wsrep-recover`` (which reads the InnoDB
redo log and exits); the member with the highest seqno is the one to
bootstrap, after it is marked ``safe_to_bootstrap: 1``.
"""

import dataclasses
import os
import re
import subprocess
import tempfile

from osbackup import durable
from osbackup import exception

GRASTATE = 'grastate.dat'
RECOVER_TIMEOUT = 300
_RECOVERED_RE = re.compile(
    r'WSREP: Recovered position:\s+([0-9a-f-]{36}):(-?\d+)')
_TEXT_RE = re.compile(r'^([0-9a-f-]{36}):(-?\d+)( safe_to_bootstrap)?$')
_LINE_RE = re.compile(r'^(uuid|seqno|safe_to_bootstrap):\s*(\S+)\s*$', re.M)


@dataclasses.dataclass(frozen=True)
class Position:
    """Where one member's data stops in the cluster's history."""

    host: str
    uuid: str
    seqno: int
    safe_to_bootstrap: bool


def read_grastate(datadir: str) -> dict:
    """``uuid``, ``seqno`` and ``safe_to_bootstrap`` from grastate.dat."""
    try:
        with open(os.path.join(datadir, GRASTATE)) as f:
            return dict(_LINE_RE.findall(f.read()))
    except FileNotFoundError:
        raise exception.InvalidInput(
            'No %s in %s: not the data directory of a Galera member'
            % (GRASTATE, datadir))


def position(host: str, datadir: str, mariadbd_argv: list) -> Position:
    """The member's last committed position; runs --wsrep-recover if need be.

    ``mariadbd_argv`` is the server's command line without
    ``--wsrep-recover`` (its options decide where the logs are).
    """
    state = read_grastate(datadir)
    uuid, seqno = state.get('uuid', ''), int(state.get('seqno', -1))
    if seqno < 0:
        # It logs the position to its error log only (not to a pipe).
        with tempfile.NamedTemporaryFile('r', prefix='wsrep-recover-',
                                         suffix='.log') as log:
            try:
                done = subprocess.run(
                    list(mariadbd_argv) + ['--wsrep-recover',
                                           '--log-error=%s' % log.name],
                    capture_output=True, text=True, timeout=RECOVER_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise exception.RestoreFailed(
                    'mariadbd --wsrep-recover on %s did not end within %d s'
                    % (host, RECOVER_TIMEOUT))
            text = log.read() + done.stderr
        found = _RECOVERED_RE.findall(text)
        if not found:
            raise exception.RestoreFailed(
                'mariadbd --wsrep-recover on %s found no position: %s'
                % (host, text[-500:]))
        uuid, seqno = found[-1][0], int(found[-1][1])
    return Position(host, uuid, seqno,
                    state.get('safe_to_bootstrap') == '1')


def as_text(p: Position) -> str:
    """``uuid:seqno`` (and `` safe_to_bootstrap``): a step's target."""
    return '%s:%d%s' % (p.uuid, p.seqno, ' safe_to_bootstrap'
                        if p.safe_to_bootstrap else '')


def from_text(host: str, text: str) -> Position | None:
    """The Position ``as_text`` wrote, or None."""
    match = _TEXT_RE.match(text or '')
    if match is None:
        return None
    return Position(host, match.group(1), int(match.group(2)),
                    bool(match.group(3)))


def choose_bootstrap(positions: list) -> Position:
    """The member to start the cluster from: the highest seqno.

    Refuses members of different histories (two uuids): starting either
    would throw the other's transactions away.
    """
    uuids = {p.uuid for p in positions}
    if len(uuids) > 1:
        raise exception.InvalidInput(
            'Members belong to different cluster histories: %s; not '
            'choosing one to bootstrap' % ', '.join(
                '%s %s:%d' % (p.host, p.uuid, p.seqno) for p in positions))
    return max(positions, key=lambda p: (p.seqno, p.safe_to_bootstrap,
                                         p.host))


def record_position(datadir: str, p: Position) -> None:
    """Write a recovered position into grastate.dat (seqno -1 there).

    What a crash left undefined, mariadbd --wsrep-recover found: the
    member then starts at that position (the cluster keeps its uuid, a
    joiner behind it catches up by IST) instead of as a new history.
    """
    path = os.path.join(datadir, GRASTATE)
    with open(path) as f:
        text = f.read()
    for key, value in (('uuid', p.uuid), ('seqno', str(p.seqno))):
        text, n = re.subn(r'^%s:.*$' % key, '%s:    %s' % (key, value),
                          text, flags=re.M)
        if not n:
            text += '%s:    %s\n' % (key, value)
    st = os.stat(path)
    durable.write_bytes(path, text.encode())
    if os.geteuid() == 0:
        os.chown(path, st.st_uid, st.st_gid)


def mark_safe_to_bootstrap(datadir: str) -> None:
    """Set ``safe_to_bootstrap: 1`` in grastate.dat, atomically."""
    path = os.path.join(datadir, GRASTATE)
    with open(path) as f:
        text = f.read()
    text, n = re.subn(r'^safe_to_bootstrap:\s*\d+', 'safe_to_bootstrap: 1',
                      text, flags=re.M)
    if not n:
        text += 'safe_to_bootstrap: 1\n'
    durable.write_bytes(path, text.encode())
