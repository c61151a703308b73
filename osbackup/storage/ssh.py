"""SSH storage: artifacts streamed to a backup server over ssh.

The off-site copy of the Operations Guide ("rsync/ssh to a backup
server"), done with nothing but the OpenSSH client here and a POSIX shell
with the usual utilities on the server. Every operation is one ``ssh``
invocation running one shell command built from ``shlex.quote``-d paths,
so no key or path can ever be interpreted by the remote shell.

A write streams through the stdin of ``ssh ... 'cat > FINAL.partial'``
(nothing is buffered beyond a pipe's worth); ``commit`` then runs a second
ssh that fsyncs the partial file, renames it to its final name and fsyncs
the directory, and ``abort`` runs ``rm -f FINAL.partial``. A reader is the
stdout of ``ssh ... 'cat PATH'`` behind a marker line (anything a chatty
login shell prints first is an error, not data); the exit status is
checked at end of stream, so a dropped connection is an error and never
a short artifact.

Locations are ``ssh://[user@]host:port/absolute/path`` (the path verbatim,
not percent-encoded) and must lie under the configured destination.
Directories are created 0700 and artifacts 0600 (``umask 077``).
ssh runs with ``BatchMode=yes``: it never prompts and never uses a
password, only keys (the configured one, or ssh's defaults when unset).
"""

from __future__ import annotations

import collections
import os
import posixpath
import re
import shlex
import subprocess
import tempfile
import time

from oslo_log import log as logging

from osbackup import exception
from osbackup.storage import base

LOG = logging.getLogger(__name__)

PARTIAL_SUFFIX = '.partial'
SCHEME = 'ssh://'
# Exit status of the remote read command when the artifact is missing
# (EX_NOINPUT); cat, the shell and ssh itself never use it.
EXIT_MISSING = 66
STDERR_LIMIT = 500
FREE_BYTES_TTL = 60
# Printed by the remote read command before the artifact, so that output
# of the account's shell startup files is an error, not artifact data.
MARKER = b'osbackup-artifact\n'
# Every remote command runs in the C locale so that its messages (a full
# disk above all) read the same on every server.
PREAMBLE = 'LC_ALL=C; export LC_ALL; '

_USER_RE = re.compile(r'^[A-Za-z0-9_.][A-Za-z0-9_.-]*$')
_HOST_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]*$')
_IPV6_RE = re.compile(r'^[0-9A-Fa-f:.]+$')
_SPACE_ERRORS = ('No space left on device', 'Disk quota exceeded')
_DF_RE = re.compile(r'\s(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s')

_DEFAULT = object()

Location = collections.namedtuple('Location', 'user host port path')


def _check_host(host, text):
    if host.startswith('['):
        if not host.endswith(']') or not _IPV6_RE.match(host[1:-1]):
            raise exception.InvalidInput('Bad host in %r' % text)
        return host[1:-1]
    if not _HOST_RE.match(host):
        raise exception.InvalidInput('Bad host in %r' % text)
    return host


def _check_user(user, text):
    if user is not None and not _USER_RE.match(user):
        raise exception.InvalidInput('Bad user name in %r' % text)
    return user


def _check_path(path, text):
    if '\n' in path or '\0' in path:
        raise exception.InvalidInput('Newline or NUL in %r' % text)
    if not path.startswith('/'):
        raise exception.InvalidInput('Path of %r is not absolute' % text)
    return posixpath.normpath(path)


def parse_destination(text: str) -> tuple[str | None, str, str]:
    """Split ``[user@]host:/absolute/path`` into (user, host, path).

    An IPv6 host is written in brackets (``backup@[2001:db8::5]:/srv``);
    the returned host has none.
    """
    if not text:
        raise exception.InvalidInput(
            '[ssh_storage] destination is not set; it must be '
            'user@host:/absolute/path')
    user, sep, rest = text.rpartition('@')
    user = _check_user(user if sep else None, text)
    if rest.startswith('['):
        host, sep, path = rest.partition(']:')
        host += ']'
    else:
        host, sep, path = rest.partition(':')
    if not sep:
        raise exception.InvalidInput(
            'Destination %r is not user@host:/absolute/path' % text)
    host = _check_host(host, text)
    path = _check_path(path, text)
    if path == '/':
        raise exception.InvalidInput(
            'Destination %r must be a directory below /' % text)
    return user, host, path


def parse_location(location: str) -> Location:
    """Split ``ssh://[user@]host:port/absolute/path`` into a Location."""
    if not isinstance(location, str) or not location.startswith(SCHEME):
        raise exception.InvalidInput(
            'Location %r is not an ssh:// location' % (location,))
    rest = location[len(SCHEME):]
    netloc, sep, path = rest.partition('/')
    if not sep:
        raise exception.InvalidInput('Location %r has no path' % location)
    user, sep, hostport = netloc.rpartition('@')
    user = _check_user(user if sep else None, location)
    host, sep, port = hostport.rpartition(':')
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise exception.InvalidInput(
            'Location %r has no valid port' % location)
    host = _check_host(host, location)
    return Location(user, host, int(port), _check_path('/' + path, location))


def format_location(user: str | None, host: str, port: int,
                    path: str) -> str:
    netloc = '[%s]' % host if ':' in host else host
    if user:
        netloc = '%s@%s' % (user, netloc)
    return '%s%s:%d%s' % (SCHEME, netloc, port, path)


def _config_value(value: str) -> str:
    """Escape a file name for ``ssh -o Option=value`` and ``ssh -i``.

    ssh expands ``%`` tokens in both and splits -o values on blanks.
    """
    value = value.replace('%', '%%')
    if re.search(r'[\s"\'\\]', value):
        value = '"%s"' % value.replace('\\', '\\\\').replace('"', '\\"')
    return value


def _q(path: str) -> str:
    return shlex.quote(path)


def _stderr_text(raw: bytes) -> str:
    lines = [line for line in raw.decode('utf-8', 'replace').splitlines()
             if line.strip() and
             not line.startswith('Warning: Permanently added')]
    text = '\n'.join(lines).strip()
    if len(text) > STDERR_LIMIT:
        # The line that matters ("Host key verification failed.") comes
        # last, after a long banner: keep both ends.
        half = STDERR_LIMIT // 2
        text = '%s [...] %s' % (text[:half], text[-half:])
    return text


class SSHWriter(base.Writer):
    """A streaming write into ``FINAL.partial`` on the backup server."""

    def __init__(self, storage, path):
        self._storage = storage
        self.final_path = path
        self.partial_path = path + PARTIAL_SUFFIX
        self.location = storage.location(path)
        self._stderr = tempfile.TemporaryFile()
        command = ('umask 077 && mkdir -p -- %s && rm -f -- %s && cat > %s'
                   % (_q(posixpath.dirname(path)), _q(self.partial_path),
                      _q(self.partial_path)))
        try:
            self._proc = storage.popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=self._stderr)
        except Exception:
            self._stderr.close()
            raise
        self._state = 'open'

    def _failed(self):
        """The stream broke: wait for ssh and raise what it said."""
        self._state = 'failed'
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        rc = self._storage.wait(self._proc)
        self._stderr.seek(0)
        raise self._storage.failure('writing %s' % self.location, rc,
                                    self._stderr.read())

    def _check_open(self):
        if self._state != 'open':
            raise exception.StorageError(
                'Write to %s after it %s' % (self.location, {
                    'failed': 'failed', 'committed': 'was committed',
                    'aborted': 'was aborted'}[self._state]))

    def write(self, data):
        self._check_open()
        try:
            self._proc.stdin.write(data)
        except OSError:
            self._failed()
        return memoryview(data).nbytes

    def flush(self):
        self._check_open()
        try:
            self._proc.stdin.flush()
        except OSError:
            self._failed()

    def commit(self):
        self._check_open()
        try:
            self._proc.stdin.close()
        except OSError:
            pass  # the exit status below says what went wrong
        rc = self._proc.wait()
        self._stderr.seek(0)
        err = self._stderr.read()
        if rc != 0:
            self._state = 'failed'
            self.abort()
            raise self._storage.failure('writing %s' % self.location, rc, err)
        # sync FILE fsyncs it (coreutils >= 8.24, busybox); older syncs
        # ignore the argument and sync everything, which is durable too.
        command = ('sync -- %s && mv -f -- %s %s && '
                   '{ sync -- %s 2>/dev/null || :; }'
                   % (_q(self.partial_path), _q(self.partial_path),
                      _q(self.final_path),
                      _q(posixpath.dirname(self.final_path))))
        try:
            self._storage.run(command, 'committing %s' % self.location,
                              timeout=None)
        except exception.StorageError:
            self._state = 'failed'
            self.abort()
            raise
        self._state = 'committed'
        self._stderr.close()
        self._storage.forget_free_bytes()
        return self.location

    def abort(self):
        if self._state in ('committed', 'aborted'):
            return
        self._state = 'aborted'
        try:
            if not self._proc.stdin.closed:
                # Let the remote cat end normally so that the partial
                # file surely exists before the rm below runs.
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
            self._storage.wait(self._proc)
            try:
                self._storage.run('rm -f -- %s' % _q(self.partial_path),
                                  'removing %s%s' % (self.location,
                                                     PARTIAL_SUFFIX))
            except exception.StorageError as exc:
                LOG.warning('Could not remove the partial artifact: %s; '
                            'the next agent start removes it', exc)
        finally:
            self._stderr.close()


class SSHReader:
    """The stdout of a remote ``cat``; the exit status is checked at EOF."""

    def __init__(self, storage, location, proc, stderr):
        self._storage = storage
        self.location = location
        self._proc = proc
        self._out = proc.stdout
        self._stderr = stderr
        self._checked = False
        self.closed = False

    def _check(self):
        if self._checked:
            return
        self._checked = True
        rc = self._storage.wait(self._proc)
        if rc == 0:
            return
        self._stderr.seek(0)
        err = self._stderr.read()
        if rc == EXIT_MISSING:
            raise exception.NotFound('Artifact %s is missing' % self.location)
        raise self._storage.failure('reading %s' % self.location, rc, err)

    def _at_start(self):
        """Read the marker: a missing artifact fails right away."""
        head = self._out.read(len(MARKER))
        if head == MARKER:
            return
        if not head:
            self._check()
            raise exception.StorageError(
                'Reading %s: the backup server sent nothing, not even the '
                'start marker' % self.location)
        raise exception.StorageError(
            'Reading %s: the backup server sent %r instead of the artifact; '
            'the login shell of %s must print nothing when it runs a '
            'command (check its startup files)'
            % (self.location, head, self._storage.login))

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            data = self._out.read()
            self._check()
            return data
        data = self._out.read(n)
        if not data and n:
            self._check()
        return data

    def readinto(self, buf):
        n = self._out.readinto(buf)
        if not n and len(buf):
            self._check()
        return n

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self._proc.poll() is None:
            # Closed before the end: nobody wants the rest.
            self._proc.kill()
        self._proc.wait()
        self._out.close()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class SSHStorage(base.Storage):
    """Artifacts on a backup server under ``[ssh_storage] destination``."""

    name = 'ssh'

    def __init__(self, conf, destination: str | None = None, options=None):
        super().__init__(conf)
        # A named target's group, or [ssh_storage].
        self.options = options if options is not None else conf.ssh_storage
        self.user, self.host, self.path = parse_destination(
            destination or self.options.destination)
        self.port = self.options.port
        self.login = '%s@%s' % (self.user, self.host) if self.user \
            else self.host
        timeout = self.options.connect_timeout
        # Bound on short remote commands (test, rm, df, find) and on
        # waiting for ssh to exit once its stream has ended.
        self.timeout = 60 + 4 * timeout
        # free_bytes runs with every heartbeat of every agent: it gets a
        # short timeout and its answer is reused for a while.
        self.free_timeout = 20 + timeout
        self._free = None   # (monotonic time, bytes or None)

    # -- plumbing ----------------------------------------------------------

    def ssh_argv(self, command: str) -> list[str]:
        """The ssh command line that runs ``command`` on the server."""
        o = self.options
        argv = [o.ssh_path, '-p', str(self.port)]
        if o.identity_file:
            # The -o form of -i: ssh takes its value through the config
            # parser, so blanks and '%' in the name survive.
            argv += ['-o', 'IdentityFile=%s' % _config_value(o.identity_file),
                     '-o', 'IdentitiesOnly=yes']
        argv += ['-o', 'BatchMode=yes',
                 '-o', 'ConnectTimeout=%d' % o.connect_timeout,
                 '-o', 'ServerAliveInterval=%d' % o.connect_timeout,
                 '-o', 'ServerAliveCountMax=3']
        if o.known_hosts_file:
            argv += ['-o', 'UserKnownHostsFile=%s'
                     % _config_value(o.known_hosts_file)]
        argv += ['-o', 'StrictHostKeyChecking=%s'
                 % ('yes' if o.strict_host_key_checking else 'no')]
        # Never forward an agent, X11 or ports to the backup server,
        # whatever ~/.ssh/config says.
        argv += ['-a', '-x', '-o', 'ClearAllForwardings=yes']
        argv += ['--', self.login, PREAMBLE + command]
        return argv

    def _preflight(self):
        identity = self.options.identity_file
        if identity and not os.path.isfile(os.path.expanduser(identity)):
            # ssh would just fail with "Permission denied (publickey)".
            raise exception.StorageError(
                '[ssh_storage] identity_file %s does not exist' % identity)

    def popen(self, command, **kwargs):
        self._preflight()
        argv = self.ssh_argv(command)
        LOG.debug('Running %s', argv)
        try:
            return subprocess.Popen(argv, **kwargs)
        except OSError as exc:
            raise exception.StorageError(
                'Cannot run the ssh client %s: %s'
                % (self.options.ssh_path, exc))

    def stream(self, command: str):
        """Run ``command`` remotely; return (process, stderr file).

        Its stdout is a pipe to read from; the caller waits for it and
        closes both.
        """
        stderr = tempfile.TemporaryFile()
        try:
            proc = self.popen(command, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=stderr)
        except Exception:
            stderr.close()
            raise
        return proc, stderr

    def wait(self, proc) -> int:
        try:
            return proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def failure(self, what, returncode, stderr) -> exception.StorageError:
        """The exception for a failed ssh run."""
        text = _stderr_text(stderr)
        if any(s in text for s in _SPACE_ERRORS):
            return exception.InsufficientSpace(
                'No space left on the backup server %s %s: %s'
                % (self.host, what, text))
        if 'Host key verification failed' in text:
            return exception.StorageError(
                'Host key verification failed for %s port %d %s: the '
                'server\'s host key is unknown or changed (see [ssh_storage]'
                ' known_hosts_file): %s' % (self.host, self.port, what, text))
        if returncode == 255:
            return exception.StorageError(
                'ssh to %s port %d failed %s: %s'
                % (self.login, self.port, what, text or 'exit status 255'))
        return exception.StorageError(
            'Backup server %s failed %s (exit status %s): %s'
            % (self.host, what, returncode, text))

    def run(self, command, what, timeout=_DEFAULT,
            ok=(0,)) -> subprocess.CompletedProcess:
        """Run ``command`` remotely; raise unless it exits with ``ok``.

        ``timeout`` defaults to ``self.timeout``; None waits for ever.
        """
        self._preflight()
        argv = self.ssh_argv(command)
        timeout = self.timeout if timeout is _DEFAULT else timeout
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
        except OSError as exc:
            raise exception.StorageError(
                'Cannot run the ssh client %s: %s'
                % (self.options.ssh_path, exc))
        except subprocess.TimeoutExpired:
            raise exception.StorageError(
                'ssh to %s timed out after %ss %s'
                % (self.login, timeout, what))
        if proc.returncode not in ok:
            raise self.failure(what, proc.returncode, proc.stderr)
        return proc

    # -- names -------------------------------------------------------------

    def location(self, path: str) -> str:
        return format_location(self.user, self.host, self.port, path)

    def _path_for(self, key):
        if not key or '\n' in key or '\0' in key:
            raise exception.InvalidInput('Bad storage key %r' % (key,))
        path = posixpath.normpath(posixpath.join(self.path, key))
        if not path.startswith(self.path + '/'):
            raise exception.InvalidInput('Storage key %r escapes %s'
                                         % (key, self.path))
        return path

    def check_location(self, location: str) -> str:
        """The remote path of ``location``, refused unless it is ours."""
        loc = parse_location(location)
        if (loc.user, loc.host, loc.port) != (self.user, self.host,
                                              self.port) or \
                not loc.path.startswith(self.path + '/'):
            raise exception.InvalidInput(
                'Location %s is not inside the ssh storage %s'
                % (location, self.location(self.path)))
        return loc.path

    # -- the Storage API ---------------------------------------------------

    def open_writer(self, key):
        return SSHWriter(self, self._path_for(key))

    def open_reader(self, location):
        path = self.check_location(location)
        command = ('if test -f %s; then printf %s && exec cat -- %s; '
                   'else echo "No such artifact" >&2; exit %d; fi'
                   % (_q(path), _q(MARKER.decode().replace('\n', '\\n')),
                      _q(path), EXIT_MISSING))
        proc, stderr = self.stream(command)
        reader = SSHReader(self, location, proc, stderr)
        try:
            reader._at_start()
        except BaseException:
            reader.close()
            raise
        return reader

    def delete(self, location):
        path = self.check_location(location)
        # Then drop the directories this left empty, up to the
        # destination; rmdir fails harmlessly on a non-empty one.
        parents = []
        parent = posixpath.dirname(path)
        while parent != self.path and parent.startswith(self.path + '/'):
            parents.append(parent)
            parent = posixpath.dirname(parent)
        command = 'rm -f -- %s || exit 1' % _q(path)
        if parents:
            command += '; { %s; } 2>/dev/null; exit 0' % ' && '.join(
                'rmdir -- %s' % _q(p) for p in parents)
        self.run(command, 'deleting %s' % location)
        self.forget_free_bytes()

    def exists(self, location):
        path = self.check_location(location)
        proc = self.run('test -f %s' % _q(path),
                        'checking %s' % location, ok=(0, 1))
        return proc.returncode == 0

    def free_bytes(self):
        """Available space at the destination, or None when unknown.

        Agents ask with every heartbeat, so one answer (even None) is
        reused for FREE_BYTES_TTL seconds or until the next commit or
        delete, rather than opening an ssh connection each time.
        """
        cached = self._free
        if cached is not None and \
                time.monotonic() - cached[0] < FREE_BYTES_TTL:
            return cached[1]
        free = self._free_bytes()
        self._free = (time.monotonic(), free)
        return free

    def _free_bytes(self):
        # The destination may not exist yet: ask about its nearest
        # existing ancestor, as the local backend does.
        command = ('d=%s; while test ! -d "$d"; do d=$(dirname "$d"); done; '
                   'df -P -k "$d"' % _q(self.path))
        try:
            proc = self.run(command, 'checking free space',
                            timeout=self.free_timeout)
        except exception.StorageError as exc:
            LOG.warning('Free space on the backup server is unknown: %s', exc)
            return None
        for line in reversed(proc.stdout.decode('utf-8',
                                                'replace').splitlines()):
            match = _DF_RE.search(line + ' ')
            if match:
                return int(match.group(3)) * 1024
        LOG.warning('Cannot parse df output of the backup server: %r',
                    proc.stdout[:200])
        return None

    def forget_free_bytes(self):
        self._free = None

    def list(self, prefix=''):
        """Stream the committed files under the destination.

        One remote ``find`` (GNU find's ``-printf``) prints size, mtime
        and path of every regular file, NUL-terminated so that no file
        name can break the listing; partial files are left out.
        """
        head = prefix.rpartition('/')[0]
        top = self._path_for(head) if head else self.path
        command = ('test -d %s || { echo "No such directory" >&2; exit %d; }; '
                   'if test -d %s; then find %s -type f ! -name %s '
                   '-printf %s; fi'
                   % (_q(self.path), EXIT_MISSING, _q(top), _q(top),
                      _q('*' + PARTIAL_SUFFIX), _q('%s %T@ %p\\0')))
        proc, stderr = self.stream(command)
        try:
            yield from self._parse_listing(proc.stdout, prefix)
            rc = self.wait(proc)
            if rc == EXIT_MISSING:
                raise exception.StorageError(
                    'Cannot list %s: no such directory on the backup server'
                    % self.location(self.path))
            if rc != 0:
                stderr.seek(0)
                raise self.failure('listing %s' % self.location(top), rc,
                                   stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()     # the caller stopped early
            proc.wait()
            proc.stdout.close()
            stderr.close()

    def _parse_listing(self, out, prefix):
        root = self.path + '/'
        rest = b''
        while True:
            chunk = out.read(1 << 16)
            if not chunk:
                break
            entries = (rest + chunk).split(b'\0')
            rest = entries.pop()
            for entry in entries:
                size, mtime, path = entry.decode(
                    'utf-8', 'surrogateescape').split(' ', 2)
                if path.startswith(root) and \
                        path[len(root):].startswith(prefix):
                    yield base.StoredObject(self.location(path), int(size),
                                            float(mtime))
        if rest:
            raise exception.StorageError(
                'Listing %s: the backup server\'s output ended mid-entry'
                % self.location(self.path))

    def cleanup_partials(self, prefix=''):
        """Remove ``*.partial`` files under ``prefix`` on the server.

        Agents call this as they start; an unreachable backup server must
        not keep them from starting, so a failure is logged and the
        leftovers wait for the next start.
        """
        return self._remove_partials(prefix, '')

    def cleanup_orphans(self, max_age=base.LEFTOVER_AGE):
        """Remove ``*.partial`` files not written to for ``max_age`` s."""
        # find -mmin +N: older than N whole minutes.
        return self._remove_partials('', '-mmin +%d ' % (max_age // 60))

    def _remove_partials(self, prefix, age_test):
        top = self._path_for(prefix) if prefix else self.path
        command = ('if test -d %s; then find %s -type f -name %s %s-print '
                   '-exec rm -f {} +; fi'
                   % (_q(top), _q(top), _q('*' + PARTIAL_SUFFIX), age_test))
        try:
            proc = self.run(command, 'removing partial artifacts under %s'
                            % self.location(top))
        except exception.StorageError as exc:
            LOG.warning('Partial artifacts were not removed: %s', exc)
            return []
        removed = []
        for line in proc.stdout.decode('utf-8', 'surrogateescape').split('\n'):
            if line.startswith(self.path + '/'):
                removed.append(self.location(line))
        return removed
