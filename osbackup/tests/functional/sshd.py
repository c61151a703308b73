"""A private OpenSSH server for functional tests.

``SSHServer`` runs the real ``/usr/sbin/sshd`` on 127.0.0.1 and a free
port, as the current user, with a host key, a client key, an
authorized_keys and a known_hosts file of its own in a temp dir; nothing
of the machine's ssh setup is used or changed (except that sshd needs its
privilege separation directory /run/sshd, created when missing).

Use it as a fixture (``self.useFixture(SSHServer())``) or with
``start()``/``stop()``. A missing sshd is installed when the tests run as
root, else the test is skipped with the reason (``host_tools``).
"""

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time

import fixtures

from osbackup.tests.functional import host_tools

SSHD = host_tools.SSHD.commands[0]
PRIVSEP_DIR = '/run/sshd'
START_TIMEOUT = 15


class SSHServerError(Exception):
    pass


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def keygen(path, comment='osbackup-test'):
    """An ed25519 key pair without passphrase: ``path`` and ``path.pub``."""
    ssh_keygen = host_tools.require(host_tools.SSHD)['ssh-keygen']
    subprocess.run([ssh_keygen, '-q', '-t', 'ed25519', '-N', '', '-C',
                    comment, '-f', path], check=True, capture_output=True,
                   timeout=30)
    with open(path + '.pub') as f:
        return f.read().strip()


class SSHServer(fixtures.Fixture):
    """sshd on 127.0.0.1:<port> accepting one generated client key."""

    def __init__(self, user=None):
        super().__init__()
        self.user = user or getpass.getuser()
        self.host = '127.0.0.1'
        self.port = None
        self.dir = None
        self.proc = None

    # -- files -------------------------------------------------------------

    @property
    def identity_file(self):
        return os.path.join(self.dir, 'client_key')

    @property
    def known_hosts(self):
        return os.path.join(self.dir, 'known_hosts')

    @property
    def log_file(self):
        return os.path.join(self.dir, 'sshd.log')

    def destination(self, path):
        """``[ssh_storage] destination`` for ``path`` on this server."""
        return '%s@%s:%s' % (self.user, self.host, path)

    def known_hosts_line(self, public_key=None):
        """A known_hosts line for this server (its own key by default)."""
        key = public_key or self.host_public_key
        return '[%s]:%d %s\n' % (self.host, self.port,
                                 ' '.join(key.split()[:2]))

    def log(self):
        try:
            with open(self.log_file, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    # -- life cycle --------------------------------------------------------

    def setUp(self):
        # Before fixtures' own set-up, which would turn a skip into an error.
        host_tools.require(host_tools.SSHD)
        super().setUp()

    def _setUp(self):
        self.start()
        self.addCleanup(self.stop)

    def start(self):
        host_tools.require(host_tools.SSHD)
        if os.geteuid() == 0:
            os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix='osbackup-sshd-')
        try:
            host_key = os.path.join(self.dir, 'host_ed25519_key')
            self.host_public_key = keygen(host_key, 'osbackup-test-host')
            client_public_key = keygen(self.identity_file)
            authorized = os.path.join(self.dir, 'authorized_keys')
            with open(authorized, 'w') as f:
                f.write(client_public_key + '\n')
            os.chmod(authorized, 0o600)
            last = None
            for _attempt in range(3):
                self.port = _free_port()
                try:
                    self._spawn(host_key, authorized)
                    break
                except SSHServerError as exc:
                    last = exc  # most likely the port was taken meanwhile
            else:
                raise last
            with open(self.known_hosts, 'w') as f:
                f.write(self.known_hosts_line())
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, host_key, authorized):
        config = os.path.join(self.dir, 'sshd_config')
        with open(config, 'w') as f:
            f.write('\n'.join([
                'ListenAddress %s' % self.host,
                'HostKey %s' % host_key,
                'PidFile %s' % os.path.join(self.dir, 'sshd.pid'),
                'AuthorizedKeysFile %s' % authorized,
                'UsePAM no',
                'StrictModes no',
                'PermitRootLogin prohibit-password',
                'PubkeyAuthentication yes',
                'PasswordAuthentication no',
                'KbdInteractiveAuthentication no',
                'AllowUsers %s' % self.user,
                'MaxStartups 100',
                'LogLevel VERBOSE',
                '']))
        # Validate the configuration first: its errors are clearer then.
        check = subprocess.run([SSHD, '-t', '-f', config], text=True,
                               capture_output=True, timeout=30)
        if check.returncode:
            raise SSHServerError('sshd rejects its test configuration: %s'
                                 % check.stderr.strip())
        log = open(self.log_file, 'ab')
        try:
            self.proc = subprocess.Popen(
                [SSHD, '-D', '-e', '-f', config, '-p', str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise SSHServerError('sshd exited at start: %s' % self.log())
            try:
                with socket.create_connection((self.host, self.port),
                                              timeout=2) as s:
                    if s.recv(64).startswith(b'SSH-'):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self._kill()
        raise SSHServerError('sshd did not answer on %s:%d within %ds: %s'
                             % (self.host, self.port, START_TIMEOUT,
                                self.log()))

    def _kill(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None

    def stop(self):
        """Stop sshd and remove its files. Safe to call more than once."""
        self._kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __repr__(self):
        return '<SSHServer %s@%s:%s>' % (self.user, self.host, self.port)
