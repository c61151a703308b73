"""Starting the mysql driver's clients: credentials, processes, errors.

Credentials reach the clients through an option file on a pipe, never
through argv or the environment, which other local users can read.
"""

import contextlib
import fcntl
import os
import subprocess
import threading

from osbackup import exception
from osbackup import streams

QUERY_TIMEOUT = 120
IDLE_POLL = 1.0
CHUNK = streams.CHUNK
PIPE_SIZE = 1 << 20
STDERR_KEPT = 64 * 1024
STDERR_TAIL = 4096
STDERR_SHOWN = 500
_ESCAPES = str.maketrans({'\\': '\\\\', '"': '\\"', '\n': '\\n',
                          '\r': '\\r'})


def _quote(value) -> str:
    """Quote an option file value with the escapes MySQL's parser reads."""
    return '"%s"' % str(value).translate(_ESCAPES)


def sql_literal(value: str) -> str:
    """A string literal of an SQL statement the clients are sent."""
    return "'%s'" % value.replace('\\', '\\\\').replace("'", "\\'")


def sql_name(value: str) -> str:
    """A quoted identifier (database, table) of such a statement."""
    return '`%s`' % value.replace('`', '``')


def _error_lines(text: str) -> str:
    """The client's ERROR lines, without the statement it may echo.

    On a failed load the client can print the failing statement, which
    holds table data; only its error lines go into reports.
    """
    errors = [line[:300] for line in text.splitlines()
              if line.startswith('ERROR')]
    return '; '.join(errors) if errors else '(no error message)'


def _reraise(exc, error, message):
    """Keep the code of our own errors (and cancellations); wrap others."""
    if isinstance(exc, exception.OsbackupError) or not isinstance(
            exc, Exception):
        raise exc
    raise error('%s: %s' % (message, exc)) from exc


class _Stderr(threading.Thread):
    """Drain a child's stderr so it can never block.

    Its beginning and its end are kept: a failed load may echo a long
    statement before the ERROR line.
    """

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self._pipe = pipe
        self._buf = bytearray()
        self._tail = bytearray()
        self.start()

    def run(self):
        with self._pipe:
            for data in iter(lambda: self._pipe.read(4096), b''):
                kept = max(0, STDERR_KEPT - len(self._buf))
                self._buf += data[:kept]
                self._tail += data[kept:]
                del self._tail[:-STDERR_TAIL]

    @property
    def text(self) -> str:
        text = self._buf.decode('utf-8', 'replace')
        if self._tail:
            text += '\n' + self._tail.decode('utf-8', 'replace')
        return text.strip()


class _Client:
    """One mysql client process, fed SQL through its stdin."""

    def __init__(self, driver, database, what=None):
        self.database = database
        #: What the client loads, as errors name it.
        self.what = what or 'database %s' % database
        path = driver.conf.mysql.mysql_path
        try:
            self.proc = driver._spawn(path, [], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL)
        except OSError as exc:
            raise exception.RestoreFailed('Cannot run %s: %s' % (path, exc))
        self._stderr = _Stderr(self.proc.stderr)
        self.closed = False
        with contextlib.suppress(OSError):
            # Fewer, larger writes and wakeups of the client.
            fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_SETPIPE_SZ,
                        PIPE_SIZE)

    def write(self, data) -> None:
        """Send SQL; a client that quit early is reported by close()."""
        try:
            self.proc.stdin.write(data)
        except BrokenPipeError:
            self.close(check=True)
            raise exception.RestoreFailed(
                'Loading %s failed: mysql quit early: %s'
                % (self.what, _error_lines(self._stderr.text)))

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def close(self, check: bool = False) -> None:
        """Let it finish; with ``check``, raise if it failed."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
            self.proc.wait()
            self._stderr.join()
        if check and self.proc.returncode != 0:
            raise exception.RestoreFailed(
                'Loading %s failed: mysql exited with status %d: %s'
                % (self.what, self.proc.returncode,
                   _error_lines(self._stderr.text)))


class ClientMixin:
    """Run mysql clients with the configured credentials."""

    def _option_file(self) -> bytes:
        opts = self.conf.mysql
        # [mysql] socket overrides host and port; clients use the socket
        # only for the host "localhost".
        items = [('user', opts.user), ('password', opts.password or ''),
                 ('host', 'localhost' if opts.socket else opts.host),
                 ('port', opts.port)]
        if opts.socket:
            items.append(('socket', opts.socket))
        return ('[client]\n' + ''.join('%s=%s\n' % (key, _quote(value))
                                       for key, value in items)).encode()

    def _spawn(self, executable: str, args: list[str],
               **popen_args) -> subprocess.Popen:
        """Start a client that reads its credentials from a pipe."""
        read_fd, write_fd = os.pipe()
        try:
            try:
                # A few hundred bytes fit the pipe buffer: this never blocks.
                os.write(write_fd, self._option_file())
            finally:
                os.close(write_fd)
            return subprocess.Popen(
                [executable, '--defaults-extra-file=/dev/fd/%d' % read_fd]
                + args, pass_fds=(read_fd,), stderr=subprocess.PIPE,
                **popen_args)
        finally:
            os.close(read_fd)

    def _query(self, sql: str) -> list[str]:
        proc = None
        try:
            proc = self._spawn(self.conf.mysql.mysql_path,
                               ['--batch', '--skip-column-names', '-e', sql],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE)
            out, err = proc.communicate(timeout=QUERY_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            if proc is not None:
                proc.kill()
                proc.communicate()
            raise exception.DumpFailed('"%s" failed: %s' % (sql, exc))
        if proc.returncode != 0:
            raise exception.DumpFailed('"%s" failed: %s' % (
                sql, err.decode('utf-8', 'replace').strip()[:STDERR_SHOWN]))
        return out.decode('utf-8', 'surrogateescape').splitlines()
