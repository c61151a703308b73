"""The DevStack plugin, run by DevStack's real function library.

Each test sources DevStack's own ``functions`` (with functions-common and
inc/*), ``lib/database`` and ``lib/rpc_backend``, vendored in
data/devstack/ (see its README for the upstream commit), then
devstack_standin.sh, which replaces only what cannot run here (package
installs, pip into the test runner's venv, systemctl), and runs the
plugin's phases with DevStack's ``run_phase``, as stack.sh, unstack.sh and
clean.sh do. Like stack.sh, they run as an unprivileged STACK_USER with
passwordless sudo, which each test creates. RabbitMQ, MariaDB, mysqldump,
sudo and the osbackup services are the real ones: the conductor runs as
STACK_USER and the agent as root, from the devstack@ unit files DevStack
writes, and ``stack extra`` ends in a real backup.
"""

import configparser
import errno
import fcntl
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import testtools

from osbackup.tests.functional import fleet
from osbackup.tests.functional import mariadb_server

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
DEVSTACK = os.path.join(HERE, 'data', 'devstack')
STANDIN = os.path.join(HERE, 'devstack_standin.sh')
UNITS = ('devstack@osbackup-conductor.service',
         'devstack@osbackup-agent.service')
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
# MySQL clients take no port from DevStack: an IPv6 server must listen on
# [::1]:3306. The system server listens on 127.0.0.1 only; tests of every
# worktree on this machine take turns with this lock.
IPV6_LOCK = '/tmp/osbackup-functional-ipv6-mysql.lock'
IPV6_LOCK_TIMEOUT = 600


def alive(pid):
    """Running and not a zombie (this test is not the daemons' parent)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, ProcessLookupError):
        return False


# Root's work goes through sudo when the test runner is not root (Zuul's
# tox jobs run as an unprivileged user with passwordless sudo).
AS_ROOT = [] if os.geteuid() == 0 else ['sudo', '-n']


def run_root(argv, **kw):
    kw.setdefault('timeout', 120)
    return subprocess.run(AS_ROOT + argv, capture_output=True, text=True,
                          **kw)


def root_read(path):
    done = run_root(['cat', path])
    if done.returncode != 0:
        raise RuntimeError('cat %s: %s' % (path, done.stderr))
    return done.stdout


def require_program(program, package):
    """Install a program this test needs when the machine lacks it."""
    if shutil.which(program):
        return
    done = run_root(['apt-get', 'install', '-y', package], timeout=600)
    if done.returncode != 0 or not shutil.which(program):
        raise RuntimeError('%s is missing and apt-get install -y %s '
                           'failed: %s' % (program, package,
                                           done.stderr[-2000:]))


def closed_ancestors(path):
    """Directories above path that other users cannot enter."""
    found = []
    path = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(path).st_mode & stat.S_IXOTH:
            found.append(path)
        if path == os.path.dirname(path):
            return found
        path = os.path.dirname(path)


class DevStackPluginTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        fleet.require_services()
        if AS_ROOT and (not shutil.which('sudo') or
                        run_root(['true']).returncode != 0):
            self.skipTest('needs root or passwordless sudo: it creates '
                          'STACK_USER and its sudoers file, as DevStack '
                          'does')
        require_program('sudo', 'sudo')
        require_program('setfacl', 'acl')
        self.uid = uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix='osbackup-devstack-')
        os.chmod(self.dir, 0o755)
        self.vhost = 'osbackup_dsk_%s' % self.uid
        self.catalogue = 'osbackup_dsk_%s' % self.uid
        self.data_db = 'osbackup_dsk_%s_data' % self.uid
        self.host = 'ft-devstack-%s' % self.uid
        self.db_user = 'osbdsk_%s' % self.uid
        self.db_password = secrets.token_hex(12)
        self.ipv6_server = None
        self.addCleanup(run_root, ['rm', '-rf', self.dir])
        self._add_stack_user()
        # Cleanups run last first: the services stop before userdel, which
        # refuses a user that still runs processes.
        self.addCleanup(self._cleanup)

        self.node = os.path.join(self.dir, 'node')
        fleet.make_compute_tree(self.node)
        for sub in ('opt-stack', 'data', 'logs'):
            path = os.path.join(self.dir, sub)
            os.mkdir(path)
            self.give_to_stack_user(path)
        self.systemd_dir = os.path.join(self.dir, 'systemd')
        os.mkdir(self.systemd_dir)

        rabbit = urllib.parse.urlsplit(fleet.RABBIT_URL)
        self.conf = os.path.join(self.dir, 'etc', 'osbackup', 'osbackup.conf')
        self.key_file = os.path.join(os.path.dirname(self.conf), 'rpc.key')
        self.state_dir = os.path.join(self.dir, 'data', 'osbackup')
        self.env = dict(
            HOME=self.user.pw_dir, USER=self.user.pw_name,
            LOGNAME=self.user.pw_name, PATH=SYSTEM_PATH, LANG='C.UTF-8',
            # What DevStack's stackrc and local.conf would set.
            TOP_DIR=DEVSTACK,
            DEST=os.path.join(self.dir, 'opt-stack'),
            DATA_DIR=os.path.join(self.dir, 'data'),
            LOGDIR=os.path.join(self.dir, 'logs'),
            SYSTEMD_DIR=self.systemd_dir,
            KILL_PATH=shutil.which('kill') or '/bin/kill',
            STACK_USER=self.user.pw_name,
            GLOBAL_VENV='True',
            DEVSTACK_VENV=sys.prefix,
            ENABLED_SERVICES='rabbit,mysql',
            SERVICE_IP_VERSION='4',
            SERVICE_LOCAL_HOST='127.0.0.1',
            ENABLE_DEBUG_LOG_LEVEL='True',
            SERVICE_TIMEOUT='90',
            RABBIT_HOST=rabbit.hostname,
            RABBIT_USERID=urllib.parse.unquote(rabbit.username or 'guest'),
            RABBIT_PASSWORD=urllib.parse.unquote(rabbit.password or 'guest'),
            DATABASE_USER=self.db_user,
            DATABASE_PASSWORD=self.db_password,
            # The plugin's own settings, pointed at this test's resources.
            OSBACKUP_DIR=ROOT,
            OSBACKUP_CONF_DIR=os.path.dirname(self.conf),
            OSBACKUP_DB_NAME=self.catalogue,
            OSBACKUP_RPC_VHOST=self.vhost,
            OSBACKUP_HOST=self.host,
            OSBACKUP_ROOT_PATH=self.node,
            OSBACKUP_AGENT_DRIVERS='mysql,nova',
            OSBACKUP_MYSQL_DATABASES=self.data_db,
        )

    def _add_stack_user(self):
        """STACK_USER as tools/create-stack-user.sh makes it."""
        name = 'osbdsk%s' % self.uid
        home = os.path.join(self.dir, 'home')
        for attempt in range(20):
            # useradd fails while another one holds /etc/passwd's lock.
            done = run_root(['useradd', '--user-group', '--no-create-home',
                             '--home-dir', home, '--shell', '/bin/bash',
                             name])
            if done.returncode == 0:
                break
            time.sleep(0.5)
        else:
            self.fail('useradd %s failed: %s' % (name, done.stderr))
        self.addCleanup(run_root, ['userdel', name])
        self.user = pwd.getpwnam(name)
        os.mkdir(home, 0o755)
        self.give_to_stack_user(home)
        sudoers = '/etc/sudoers.d/50_osbackup_%s' % name
        self.addCleanup(run_root, ['rm', '-f', sudoers])
        for argv, data in ((['tee', sudoers],
                            '%s ALL=(root) NOPASSWD:ALL\n' % name),
                           (['chmod', '0440', sudoers], None)):
            done = run_root(argv, input=data)
            if done.returncode != 0:
                self.fail('%s: %s' % (' '.join(argv), done.stderr))
        # DevStack's venv is STACK_USER's; this test's is the test
        # runner's, perhaps in a home directory others cannot enter
        # (/root, Ubuntu's 0750 homes): let STACK_USER through, only.
        closed = set()
        for path in (sys.executable, os.path.realpath(sys.executable),
                     os.path.join(sys.prefix, 'bin', 'python'),
                     os.path.join(ROOT, 'setup.cfg')):
            closed.update(closed_ancestors(path))
        for path in sorted(closed):
            done = run_root(['setfacl', '-m', 'u:%s:x' % name, path])
            if done.returncode != 0:
                self.fail('setfacl on %s: %s' % (path, done.stderr))
            self.addCleanup(run_root, ['setfacl', '-x', 'u:%s' % name, path])

    def _add_db_user(self):
        """DevStack's DATABASE_USER: an administrator with a password."""
        fleet.sql("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'"
                  % (self.db_user, self.db_password))
        self.addCleanup(fleet.sql, "DROP USER IF EXISTS '%s'@'127.0.0.1'"
                        % self.db_user)
        fleet.sql("GRANT ALL PRIVILEGES ON *.* TO '%s'@'127.0.0.1' "
                  "WITH GRANT OPTION" % self.db_user)

    def _add_data_db(self, sql=fleet.sql):
        sql('CREATE DATABASE %s' % self.data_db)
        sql('CREATE TABLE %s.t (id INT PRIMARY KEY, name VARCHAR(32)) '
            'ENGINE=InnoDB' % self.data_db)
        sql("INSERT INTO %s.t VALUES (1, 'one'), (2, 'two')" % self.data_db)

    # -- helpers ---------------------------------------------------------

    def give_to_stack_user(self, path):
        done = run_root(['chown', '%d:%d' % (self.user.pw_uid,
                                             self.user.pw_gid), path])
        if done.returncode != 0:
            self.fail('chown %s: %s' % (path, done.stderr))

    def stack_user_argv(self, argv, env):
        """argv run as STACK_USER with exactly env, as sudo -u does."""
        return AS_ROOT + ['sudo', '-n', '-u', self.user.pw_name, 'env', '-i'
                          ] + ['%s=%s' % kv for kv in sorted(env.items())
                               ] + argv

    def devstack(self, *phases, check=True, env=None, call=None):
        """Run phases as stack.sh/unstack.sh/clean.sh do, as STACK_USER.

        With ``call``, source plugin.sh for its functions and call that
        one instead.
        """
        script = [
            'set -o errexit', 'umask 022',
            'source $TOP_DIR/functions',
            'source %s' % STANDIN,
            'source $TOP_DIR/lib/database',
            'source $TOP_DIR/lib/rpc_backend',
            'declare -A GITDIR',
            'GITDIR[osbackup]=$OSBACKUP_DIR',
            'DEVSTACK_PLUGINS=osbackup',
            'run_phase source',
            'if initialize_database_backends; then',
            '    define_database_baseurl',
            'fi',
        ]
        if call:
            script += ['source $OSBACKUP_DIR/devstack/plugin.sh', call]
        for phase in phases:
            # Timings for a failure's message.
            script += ['run_phase %s' % phase,
                       'echo "(%s done after $SECONDS s)"' % phase]
        start = time.monotonic()
        proc = subprocess.run(
            self.stack_user_argv(['bash', '-c', '\n'.join(script)],
                                 dict(self.env, **(env or {}))),
            cwd=self.dir, capture_output=True, text=True, timeout=600)
        proc.elapsed = time.monotonic() - start
        if check and proc.returncode != 0:
            self.fail('%s exited %d\nstdout:\n%s\nstderr:\n%s\nlogs:\n%s'
                      % (call or ' / '.join(phases), proc.returncode,
                         proc.stdout,
                         proc.stderr, self.logs()))
        return proc

    def logs(self):
        out = []
        for unit in UNITS:
            try:
                with open(os.path.join(self.dir, 'logs',
                                       '%s.log' % unit)) as f:
                    out.append('--- %s\n%s' % (unit, f.read()[-4000:]))
            except FileNotFoundError:
                pass
        return '\n'.join(out)

    def pid(self, unit):
        with open(os.path.join(self.systemd_dir, 'state',
                               '%s.pid' % unit)) as f:
            return int(f.read())

    def as_stack_user(self, argv):
        return subprocess.run(self.stack_user_argv(argv, self.env),
                              capture_output=True, text=True, timeout=60)

    def manage_json(self, *argv):
        proc = run_root(
            [sys.executable, '-m', 'osbackup.cmd.manage', '--config-file',
             self.conf] + list(argv) + ['--format', 'json'])
        self.assertEqual(0, proc.returncode, proc.stderr)
        return json.loads(proc.stdout)

    def read_conf(self):
        conf = configparser.RawConfigParser()
        conf.read_string(root_read(self.conf))
        return conf

    def assert_smoke_backup(self):
        backups = self.manage_json('backup', 'list')
        self.assertEqual(1, len(backups), backups)
        backup = self.manage_json('backup', 'show', str(backups[0]['id']))
        self.assertEqual('SUCCEEDED', backup['status'], backup)
        stored = {(a['host'], a['service'], a['name'], a['status'])
                  for a in backup['artifacts']}
        # The server's accounts and grants are an artifact of their own.
        self.assertEqual(
            {(self.host, 'mysql', self.data_db, 'available'),
             (self.host, 'mysql', 'accounts', 'available'),
             (self.host, 'nova', 'nova', 'available')}, stored)
        for artifact in backup['artifacts']:
            # The archives are in STACK_USER's 0700 state directory.
            self.assertEqual(0, run_root(['test', '-f', artifact['location']]
                                         ).returncode, artifact)

    def _cleanup(self):
        for unit in UNITS:
            try:
                pid = self.pid(unit)
            except (FileNotFoundError, ValueError):
                continue
            if alive(pid):
                run_root(['kill', '-9', str(pid)])
        for db in (self.catalogue, self.data_db):
            fleet.sql('DROP DATABASE IF EXISTS %s' % db)
        fleet.rabbitmqctl('delete_vhost', self.vhost, check=False)
        if self.ipv6_server:
            self.ipv6_server.stop()
        run_root(['rm', '-rf', self.dir])

    # -- tests -------------------------------------------------------------

    def test_stack_unstack_clean(self):
        self._add_db_user()
        self._add_data_db()
        stack = self.devstack('stack install', 'stack post-config',
                              'stack extra')
        self.assertIn('is already installed from %s' % ROOT, stack.stdout)

        # post-config: the generated sample with DevStack's settings.
        self.assertIn('# From osbackup.conf', root_read(self.conf))
        conf = self.read_conf()
        env = self.env
        self.assertEqual(
            'rabbit://%s:%s@%s:5672/%s' % (
                env['RABBIT_USERID'], env['RABBIT_PASSWORD'],
                env['RABBIT_HOST'], self.vhost),
            conf.get('DEFAULT', 'transport_url'))
        self.assertEqual(
            'mysql+pymysql://%s:%s@127.0.0.1/%s?charset=utf8' % (
                self.db_user, self.db_password, self.catalogue),
            conf.get('database', 'connection'))
        expected = {
            ('DEFAULT', 'host'): self.host,
            ('DEFAULT', 'debug'): 'True',
            ('DEFAULT', 'service_manager'): 'systemd',
            ('DEFAULT', 'state_path'): self.state_dir,
            ('DEFAULT', 'rpc_signing_key_file'): self.key_file,
            ('storage', 'local_path'): os.path.join(self.state_dir,
                                                    'backups'),
            ('agent', 'root_path'): self.node,
            ('agent', 'drivers'): 'mysql,nova',
            ('mysql', 'host'): '127.0.0.1',
            ('mysql', 'user'): self.db_user,
            ('mysql', 'password'): self.db_password,
            ('mysql', 'databases'): self.data_db,
            ('keystone', 'units'): 'devstack@keystone',
        }
        self.assertEqual(expected, {k: conf.get(*k) for k in expected})
        self.assertTrue(conf.get('nova', 'units').startswith(
            'devstack@n-api,'))
        self.assertIn(self.vhost, fleet.rabbitmqctl('list_vhosts').stdout)

        # The configuration and the key hold secrets: STACK_USER's, 0600,
        # and STACK_USER (the conductor, osbackup-manage) can read both.
        for path in (self.conf, self.key_file):
            st = os.stat(path)
            self.assertEqual((self.user.pw_uid, 0o600),
                             (st.st_uid, stat.S_IMODE(st.st_mode)), path)
            read = self.as_stack_user(['cat', path])
            self.assertEqual(0, read.returncode, read.stderr)
        self.assertRegex(read.stdout, r'^[0-9a-f]{64}\n$')

        # extra: both run, from DevStack's unit files, as their users, and
        # the smoke backup is in the catalogue.
        for unit, user in zip(UNITS, (self.user.pw_name, 'root')):
            unitfile = configparser.RawConfigParser()
            unitfile.read(os.path.join(self.systemd_dir, unit))
            self.assertEqual(user, unitfile.get('Service', 'User'))
            pid = self.pid(unit)
            self.assertTrue(alive(pid), unit)
            self.assertEqual(pwd.getpwnam(user).pw_uid,
                             os.stat('/proc/%d' % pid).st_uid, unit)
        self.assert_smoke_backup()

        # A second stack keeps the key (agents elsewhere use it), and
        # hands a key left as root's back to STACK_USER.
        key = root_read(self.key_file)
        run_root(['chown', '0:0', self.key_file])
        self.devstack(call='_osbackup_write_rpc_key')
        self.assertEqual(key, root_read(self.key_file))
        self.assertEqual(self.user.pw_uid, os.stat(self.key_file).st_uid)

        # unstack: both stop on SIGTERM (no SIGKILL needed).
        pids = {unit: self.pid(unit) for unit in UNITS}
        unstack = self.devstack('unstack')
        self.assertNotIn('ignored SIGTERM', unstack.stdout)
        for unit, pid in pids.items():
            self.assertIn('systemctl stop %s: stopped' % unit,
                          unstack.stdout)
            self.assertFalse(alive(pid), unit)

        # clean: state, archives, the configuration with its passwords
        # and the key are gone.
        self.assertTrue(os.path.isdir(self.state_dir))
        self.devstack('clean')
        for path in (self.state_dir, self.conf, self.key_file,
                     os.path.dirname(self.conf)):
            self.assertFalse(os.path.exists(path), path)

    def _start_ipv6_server(self):
        """A private MariaDB on [::1]:3306, the only port DevStack uses."""
        # Read-only: the lock file may be another user's.
        lock = os.open(IPV6_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
        self.addCleanup(os.close, lock)
        deadline = time.monotonic() + IPV6_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.fail('%s held for %d s' % (IPV6_LOCK,
                                                    IPV6_LOCK_TIMEOUT))
                time.sleep(1)
        probe = socket.socket(socket.AF_INET6)
        try:
            probe.bind(('::1', 3306))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                self.skipTest('[::1]:3306 is taken by a server this test '
                              'did not start; it needs that port free')
            self.skipTest('no IPv6 loopback here: %s' % exc)
        finally:
            probe.close()
        server = mariadb_server.PrivateServer(
            os.path.join(self.dir, 'mariadb-ipv6'),
            ['--skip-networking=0', '--bind-address=::1', '--port=3306'])
        server.start()
        self.ipv6_server = server
        server.sql("CREATE USER '%s'@'::1' IDENTIFIED BY '%s'"
                   % (self.db_user, self.db_password))
        server.sql("GRANT ALL PRIVILEGES ON *.* TO '%s'@'::1' "
                   "WITH GRANT OPTION" % self.db_user)
        return server

    def test_ipv6_database_host(self):
        # An IPv6 DevStack: lib/database makes MYSQL_HOST ::1 and
        # DATABASE_HOST [::1]. The URL needs the brackets, mysqldump must
        # not have them.
        server = self._start_ipv6_server()
        self._add_data_db(server.sql)
        self.devstack('stack install', 'stack post-config', 'stack extra',
                      env={'SERVICE_IP_VERSION': '6',
                           'SERVICE_LOCAL_HOST': '::1'})
        conf = self.read_conf()
        self.assertEqual('::1', conf.get('mysql', 'host'))
        self.assertEqual(
            'mysql+pymysql://%s:%s@[::1]/%s?charset=utf8' % (
                self.db_user, self.db_password, self.catalogue),
            conf.get('database', 'connection'))
        self.assert_smoke_backup()

    def test_wait_for_services_says_why_it_failed(self):
        self._add_db_user()
        self._add_data_db()
        self.devstack('stack install', 'stack post-config')

        # osbackup-manage, as the plugin runs it, whose "agent wait" reads
        # a catalogue that does not exist: the real command's real error.
        bin_dir = os.path.join(self.dir, 'bin')
        os.mkdir(bin_dir)
        venv_bin = os.path.join(sys.prefix, 'bin')
        for name in os.listdir(venv_bin):
            os.symlink(os.path.join(venv_bin, name),
                       os.path.join(bin_dir, name))
        broken = os.path.join(self.dir, 'no-catalogue.conf')
        with open(broken, 'w') as f:
            f.write('[database]\nconnection = mysql+pymysql://%s:%s@'
                    '127.0.0.1/no_such_catalogue_%s\n'
                    % (self.db_user, self.db_password, self.uid))
        manage = os.path.join(bin_dir, 'osbackup-manage')
        os.unlink(manage)
        with open(manage, 'w') as f:
            f.write('#!/bin/bash\n'
                    'if [[ "$3 $4" == "agent wait" ]]; then\n'
                    '    set -- "$1" "$2" --config-file %s "${@:3}"\n'
                    'fi\n'
                    'exec %s/osbackup-manage "$@"\n' % (broken, venv_bin))
        os.chmod(manage, 0o755)
        proc = self.devstack(
            'stack extra', check=False,
            env={'OSBACKUP_BIN_DIR': bin_dir, 'OSBACKUP_AGENT_TIMEOUT': '10'})
        self.assertNotEqual(0, proc.returncode, proc.stdout)
        # The cause is shown, once however often it repeats, and again in
        # the final error.
        cause = "Unknown database 'no_such_catalogue_%s'" % self.uid
        self.assertEqual(1, proc.stderr.count(
            'osbackup-manage agent wait failed: '), proc.stderr)
        self.assertIn(cause, proc.stderr)
        final = proc.stderr.split('is not up after 10 seconds: ', 1)
        self.assertEqual(2, len(final), proc.stderr)
        self.assertIn(cause, final[1])
        self.devstack('unstack')

        # A catalogue without its schema: the conductor refuses to start,
        # and the wait says so at once instead of waiting out its timeout.
        fleet.sql('DROP TABLE alembic_version', self.catalogue)
        proc = self.devstack('stack extra', check=False,
                             env={'OSBACKUP_AGENT_TIMEOUT': '120'})
        self.assertNotEqual(0, proc.returncode, proc.stdout)
        self.assertIn('osbackup-conductor is not running', proc.stderr)
        self.assertLess(proc.elapsed, 60, proc.stderr)

    def test_failed_smoke_backup_fails_the_stack(self):
        self._add_db_user()
        self._add_data_db()
        # A database that does not exist makes mysqldump, hence the
        # backup, fail.
        proc = self.devstack(
            'stack install', 'stack post-config', 'stack extra', check=False,
            env={'OSBACKUP_AGENT_DRIVERS': 'mysql',
                 'OSBACKUP_MYSQL_DATABASES': 'no_such_db_%s' % self.uid})
        self.assertNotEqual(0, proc.returncode, proc.stdout)
        self.assertIn('osbackup smoke backup of %s failed' % self.host,
                      proc.stderr)
        # The stack stopped at the smoke step, after starting the daemons.
        pids = {unit: self.pid(unit) for unit in UNITS}
        for unit, pid in pids.items():
            self.assertTrue(alive(pid), unit)
        self.devstack('unstack')
        for unit, pid in pids.items():
            self.assertFalse(alive(pid), unit)
