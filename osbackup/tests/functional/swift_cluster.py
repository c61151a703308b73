"""A private Swift all-in-one for functional tests.

``SwiftCluster`` runs Debian's own Swift servers (swift-proxy,
swift-account, swift-container, swift-object; one replica, one device
under a temp dir) and a memcached for tempauth, all on 127.0.0.1 and free
ports, with rings built by swift-ring-builder in a private swift_dir. The
proxy pipeline has tempauth (v1 auth, accounts below) and s3api, so the
same server answers the Swift API and S3 (access key ``test:tester``,
secret ``testing``). Two storage policies: ``gold`` (default) and
``silver``.

Swift reads /etc/swift/swift.conf when its modules are imported and the
servers never look at their swift_dir for it: each server runs under a
launcher that points swift at the private swift.conf first. Nothing of
the machine's Swift setup is used or changed.

Missing packages are installed with apt-get (as root) by
``host_tools.require``; where that cannot be done the tests are skipped
with the reason.
"""

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

import fixtures

from osbackup.tests.functional import host_tools

PYTHON = '/usr/bin/python3'
RING_BUILDER = '/usr/bin/swift-ring-builder'
MEMCACHED = '/usr/bin/memcached'
# Four servers import Swift at once: on a loaded test machine that
# takes a minute.
START_TIMEOUT = 120
BASE_DIR = os.environ.get('OSBACKUP_TEST_SWIFT_DIR', '/var/tmp')
SERVERS = ('account', 'container', 'object', 'proxy')

# tempauth accounts: (account, user, key, groups)
ADMIN = ('test', 'tester', 'testing', '.admin')
READER = ('test', 'reader', 'reading', '')

LAUNCHER = textwrap.dedent('''
    import sys
    from swift.common import utils
    # Before anything reads it: the private swift.conf, not /etc/swift's.
    utils.SWIFT_CONF_FILE = sys.argv[1]
    from swift.common import constraints, storage_policy
    constraints.reload_constraints()
    storage_policy.reload_storage_policies()
    utils.validate_configuration()
    from swift.common.wsgi import run_wsgi
    sys.exit(run_wsgi(sys.argv[2], sys.argv[3] + '-server', verbose=True))
''')


class SwiftUnavailable(Exception):
    """Swift cannot run here; the message says why."""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


_NEEDED_BY = 'the object storage (swift, s3) tests'
TOOLS = [host_tools.Tool(commands=(command,), package=package,
                         needed_by=_NEEDED_BY)
         for package, command in (
             ('swift', RING_BUILDER),
             ('swift-proxy', '/usr/bin/swift-proxy-server'),
             ('swift-account', '/usr/bin/swift-account-server'),
             ('swift-container', '/usr/bin/swift-container-server'),
             ('swift-object', '/usr/bin/swift-object-server'),
             ('memcached', MEMCACHED))]


def ensure_packages():
    """Install Debian's Swift and memcached if need be, or skip the test."""
    for tool in TOOLS:
        host_tools.require(tool)


def _conf(path, text):
    with open(path, 'w') as f:
        f.write(textwrap.dedent(text).lstrip())


class SwiftCluster(fixtures.Fixture):
    """Swift (native API + s3api) on 127.0.0.1, torn down afterwards."""

    host = '127.0.0.1'

    def __init__(self):
        super().__init__()
        self.dir = None
        self.ports = {}
        self.procs = {}
        self._logs = []

    # -- what tests use ----------------------------------------------------

    @property
    def url(self):
        return 'http://%s:%d' % (self.host, self.ports['proxy'])

    @property
    def auth_url(self):
        return self.url + '/auth/v1.0'

    @property
    def devices(self):
        return os.path.join(self.dir, 'srv')

    def swift_flags(self, user=ADMIN):
        """[swift_storage] options logging in as tempauth ``user``."""
        return dict(auth_url=self.auth_url, auth_version=1,
                    user='%s:%s' % user[:2], key=user[2])

    def s3_flags(self, user=ADMIN):
        """[s3_storage] options for the s3api of this cluster."""
        return dict(endpoint_url=self.url, region_name='us-east-1',
                    access_key='%s:%s' % user[:2], secret_key=user[2],
                    addressing_style='path')

    def log(self, server):
        try:
            with open(os.path.join(self.dir, server + '.log'),
                      errors='replace') as f:
                return f.read()[-4000:]
        except OSError:
            return ''

    def object_files(self):
        """Paths of the .data files on the device (one replica)."""
        found = []
        for dirpath, _dirs, files in os.walk(self.devices):
            found += [os.path.join(dirpath, n) for n in files
                      if n.endswith('.data')]
        return found

    # -- life cycle --------------------------------------------------------

    def _setUp(self):
        ensure_packages()
        # Not tempfile's default: test cases point it at a directory
        # removed after each test, and the cluster outlives them.
        self.dir = tempfile.mkdtemp(prefix='osbackup-swift-', dir=BASE_DIR)
        self.addCleanup(self.stop)
        for name in ('memcached',) + SERVERS:
            self.ports[name] = _free_port()
        self._write_configs()
        self._build_rings()
        self._start_memcached()
        for server in SERVERS:
            self._start(server)
        self._wait_ready()

    def _write_configs(self):
        d = self.dir
        os.makedirs(os.path.join(self.devices, 'd1'))
        _conf(os.path.join(d, 'swift.conf'), '''
            [swift-hash]
            swift_hash_path_suffix = osbackup-test-suffix
            swift_hash_path_prefix = osbackup-test-prefix

            [storage-policy:0]
            name = gold
            default = yes

            [storage-policy:1]
            name = silver

            [swift-constraints]
            ''')
        common = '''
            [DEFAULT]
            bind_ip = %s
            bind_port = %%d
            workers = 0
            user = root
            swift_dir = %s
            devices = %s
            mount_check = false
            disable_fallocate = true
            fallocate_reserve = 0
            log_name = %%s
            log_level = INFO
            log_address = /nonexistent
            ''' % (self.host, d, self.devices)
        for server in ('account', 'container', 'object'):
            _conf(os.path.join(d, '%s-server.conf' % server),
                  common % (self.ports[server], server) + '''
            [pipeline:main]
            pipeline = %s-server

            [app:%s-server]
            use = egg:swift#%s
            ''' % (server, server, server))
        filters = ['catch_errors', 'gatekeeper', 'healthcheck',
                   'proxy-logging', 'cache', 'listing_formats', 'bulk',
                   's3api', 'tempauth', 'copy', 'container-quotas',
                   'account-quotas', 'slo', 'dlo']
        users = '\n'.join(
            'user_%s_%s = %s %s' % (account, user, key, groups)
            for account, user, key, groups in (ADMIN, READER))
        sections = ''.join('''
            [filter:%s]
            use = egg:swift#%s
            ''' % (f, f.replace('-', '_')) for f in filters
            if f not in ('cache', 'tempauth', 's3api'))
        _conf(os.path.join(d, 'proxy-server.conf'),
              common % (self.ports['proxy'], 'proxy-server') + '''
            [pipeline:main]
            pipeline = %s proxy-logging proxy-server

            [app:proxy-server]
            use = egg:swift#proxy
            account_autocreate = true
            allow_account_management = true
            # One node of each: never stop talking to it after errors
            # (a test stops the object server on purpose), and give a
            # loaded test machine time to answer.
            error_suppression_limit = 1000000
            error_suppression_interval = 1
            conn_timeout = 5
            node_timeout = 30

            [filter:cache]
            use = egg:swift#memcache
            memcache_servers = %s:%d

            [filter:tempauth]
            use = egg:swift#tempauth
            %s

            [filter:s3api]
            use = egg:swift#s3api
            location = us-east-1
            ''' % (' '.join(filters), self.host, self.ports['memcached'],
                   users.replace('\n', '\n            ')) + sections)

    def _build_rings(self):
        rings = [('account', 'account'), ('container', 'container'),
                 ('object', 'object'), ('object-1', 'object')]
        for ring, server in rings:
            builder = os.path.join(self.dir, ring + '.builder')
            device = 'r1z1-%s:%d/d1' % (self.host, self.ports[server])
            for argv in (['create', '6', '1', '1'],
                         ['add', device, '100'], ['rebalance']):
                proc = subprocess.run([RING_BUILDER, builder] + argv,
                                      capture_output=True, text=True,
                                      timeout=60, cwd=self.dir)
                # rebalance exits 1 on warnings (one device, one replica)
                if proc.returncode not in (0, 1):
                    raise SwiftUnavailable(
                        'swift-ring-builder %s %s failed: %s'
                        % (ring, ' '.join(argv), proc.stderr or proc.stdout))

    def _spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + '.log'), 'ab')
        try:
            self.procs[name] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=self.dir)
        finally:
            log.close()

    def _start_memcached(self):
        self._spawn('memcached', [MEMCACHED, '-l', self.host, '-p',
                                  str(self.ports['memcached']), '-U', '0',
                                  '-m', '32', '-u', 'root'])

    def _start(self, server):
        self._spawn(server, [PYTHON, '-c', LAUNCHER,
                             os.path.join(self.dir, 'swift.conf'),
                             os.path.join(self.dir, server + '-server.conf'),
                             server])

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(SERVERS)
        while pending:
            server = pending[0]
            proc = self.procs[server]
            if proc.poll() is not None:
                raise SwiftUnavailable('swift-%s-server exited at start: %s'
                                       % (server, self.log(server)))
            try:
                with urllib.request.urlopen(
                        'http://%s:%d/%s' % (
                            self.host, self.ports[server],
                            'healthcheck' if server == 'proxy' else
                            'recon/version'), timeout=2):
                    pass
                pending.pop(0)
                continue
            except urllib.error.HTTPError:
                pending.pop(0)      # answering HTTP at all is enough
                continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SwiftUnavailable(
                    'swift-%s-server did not answer within %ds: %s'
                    % (server, START_TIMEOUT, self.log(server)))
            time.sleep(0.1)
        self._wait_auth()

    def _wait_auth(self):
        """The first auth creates the account; wait until it works."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            request = urllib.request.Request(self.auth_url, headers={
                'X-Auth-User': '%s:%s' % ADMIN[:2], 'X-Auth-Key': ADMIN[2]})
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:
                    url = reply.headers['X-Storage-Url']
                    token = reply.headers['X-Auth-Token']
                with urllib.request.urlopen(urllib.request.Request(
                        url, method='HEAD',
                        headers={'X-Auth-Token': token}), timeout=5):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise SwiftUnavailable(
                        'Swift does not authenticate (%s): %s'
                        % (exc, self.log('proxy')))
                time.sleep(0.2)

    def stop(self):
        """Stop the servers and remove their files."""
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = {}
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


_shared = {}


def shared() -> SwiftCluster:
    """One cluster per test process, started on first use.

    Starting Swift takes seconds; test classes share it (each in its own
    container/bucket) and it stops when the process exits. Raises
    SwiftUnavailable, then and on every later call, when it cannot run.
    """
    if 'error' in _shared:
        raise SwiftUnavailable(_shared['error'])
    if 'cluster' not in _shared:
        ensure_packages()       # or unittest.SkipTest, saying why
        cluster = SwiftCluster()
        try:
            cluster.setUp()
        except Exception as exc:
            # fixtures wraps what _setUp raised (after cleaning up).
            first = exc.args[0][1] if isinstance(
                exc, fixtures.MultipleExceptions) else exc
            _shared['error'] = str(first) if isinstance(
                first, SwiftUnavailable) else 'starting it failed: %r' % first
            raise SwiftUnavailable(_shared['error'])
        atexit.register(cluster.cleanUp)
        _shared['cluster'] = cluster
    return _shared['cluster']


def shared_or_skip(testcase) -> SwiftCluster:
    """``shared()``, or skip ``testcase`` saying why Swift cannot run."""
    try:
        return shared()
    except SwiftUnavailable as exc:
        testcase.skipTest('SKIPPED: no Swift all-in-one: %s' % exc)


if __name__ == '__main__':
    # Manual use: python -m osbackup.tests.functional.swift_cluster
    cluster = SwiftCluster()
    cluster.setUp()
    print('Swift at %s (auth %s), Ctrl-C to stop'
          % (cluster.url, cluster.auth_url))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        cluster.cleanUp()
        sys.exit(0)
