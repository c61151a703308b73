"""The DevStack plugin, run phase by phase on this machine.

devstack/settings and devstack/plugin.sh are sourced exactly as DevStack
sources them, after devstack_standin.sh, a small stand-in for the DevStack
functions the plugin calls (not DevStack: processes instead of systemd
units, no package installs). RabbitMQ, MariaDB, mysqldump and the osbackup
commands are the real ones: ``stack`` must create the vhost and the
catalogue, start the conductor and the agent and end in a real backup;
``unstack`` must stop both and ``clean`` remove their state.
"""

import configparser
import getpass
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import uuid

import testtools

from osbackup.tests.functional import fleet

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
STANDIN = os.path.join(HERE, 'devstack_standin.sh')
SETTINGS = os.path.join(ROOT, 'devstack', 'settings')
PLUGIN = os.path.join(ROOT, 'devstack', 'plugin.sh')
DAEMONS = ('osbackup-conductor', 'osbackup-agent')


def alive(pid):
    """Running and not a zombie (this test is not the daemons' parent)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, ProcessLookupError):
        return False


class DevStackPluginTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        fleet.require_services()
        self.uid = uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix='osbackup-devstack-')
        self.vhost = 'osbackup_dsk_%s' % self.uid
        self.catalogue = 'osbackup_dsk_%s' % self.uid
        self.data_db = 'osbackup_dsk_%s_data' % self.uid
        self.host = 'ft-devstack-%s' % self.uid
        self.addCleanup(self._cleanup)

        self.node = os.path.join(self.dir, 'node')
        fleet.make_compute_tree(self.node)
        fleet.sql('CREATE DATABASE %s' % self.data_db)
        fleet.sql('CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(32)) '
                  'ENGINE=InnoDB', self.data_db)
        fleet.sql("INSERT INTO t VALUES (1, 'one'), (2, 'two')", self.data_db)

        rabbit = urllib.parse.urlsplit(fleet.RABBIT_URL)
        db = urllib.parse.urlsplit(fleet.DB_URL)
        bin_dir = os.path.dirname(sys.executable)
        self.conf = os.path.join(self.dir, 'etc', 'osbackup', 'osbackup.conf')
        self.env = dict(
            os.environ,
            PATH=bin_dir + os.pathsep + os.environ.get('PATH', ''),
            # What DevStack's stackrc and local.conf would set.
            DEST=os.path.join(self.dir, 'opt-stack'),
            DATA_DIR=os.path.join(self.dir, 'data'),
            SERVICE_DIR=os.path.join(self.dir, 'status'),
            LOGDIR=os.path.join(self.dir, 'logs'),
            STACK_USER=getpass.getuser(),
            DEVSTACK_VENV=sys.prefix,
            STANDIN_PYTHON=sys.executable,
            ENABLED_SERVICES='rabbit,mysql',
            ENABLE_DEBUG_LOG_LEVEL='True',
            SERVICE_TIMEOUT='90',
            RABBIT_HOST=rabbit.hostname,
            RABBIT_USERID=urllib.parse.unquote(rabbit.username or 'guest'),
            RABBIT_PASSWORD=urllib.parse.unquote(rabbit.password or 'guest'),
            DATABASE_HOST=db.hostname,
            DATABASE_USER=urllib.parse.unquote(db.username or 'root'),
            DATABASE_PASSWORD=urllib.parse.unquote(db.password or ''),
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
        self.state_dir = os.path.join(self.dir, 'data', 'osbackup')

    # -- helpers ---------------------------------------------------------

    def devstack(self, *phases, check=True, env=None):
        """Source the stand-in and settings, then plugin.sh per phase."""
        script = ['set -o errexit', 'source %s' % STANDIN,
                  'source %s' % SETTINGS]
        script += ['source %s %s' % (PLUGIN, phase) for phase in phases]
        proc = subprocess.run(['bash', '-c', '\n'.join(script)],
                              cwd=self.dir, env=dict(self.env, **(env or {})),
                              capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            self.fail('%s exited %d\nstdout:\n%s\nstderr:\n%s\nlogs:\n%s'
                      % (' / '.join(phases), proc.returncode, proc.stdout,
                         proc.stderr, self.logs()))
        return proc

    def logs(self):
        out = []
        for name in DAEMONS:
            try:
                with open(os.path.join(self.dir, 'logs',
                                       '%s.log' % name)) as f:
                    out.append('--- %s\n%s' % (name, f.read()[-4000:]))
            except FileNotFoundError:
                pass
        return '\n'.join(out)

    def pid(self, name):
        with open(os.path.join(self.dir, 'status', '%s.pid' % name)) as f:
            return int(f.read())

    def manage_json(self, *argv):
        proc = subprocess.run(
            [sys.executable, '-m', 'osbackup.cmd.manage', '--config-file',
             self.conf] + list(argv) + ['--format', 'json'],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(0, proc.returncode, proc.stderr)
        return json.loads(proc.stdout)

    def _cleanup(self):
        for name in DAEMONS:
            try:
                pid = self.pid(name)
            except (FileNotFoundError, ValueError):
                continue
            if alive(pid):
                os.kill(pid, 9)
        for db in (self.catalogue, self.data_db):
            fleet.sql('DROP DATABASE IF EXISTS %s' % db)
        fleet.rabbitmqctl('delete_vhost', self.vhost, check=False)
        subprocess.run(['rm', '-rf', self.dir])

    # -- tests -------------------------------------------------------------

    def test_stack_unstack_clean(self):
        stack = self.devstack('stack install', 'stack post-config',
                              'stack extra')
        self.assertIn('is already installed from %s' % ROOT, stack.stdout)

        # post-config: the generated sample with DevStack's settings.
        with open(self.conf) as f:
            self.assertIn('# From osbackup.conf', f.read())
        conf = configparser.RawConfigParser()
        conf.read(self.conf)
        env = self.env
        self.assertEqual(
            'rabbit://%s:%s@%s:5672/%s' % (
                env['RABBIT_USERID'], env['RABBIT_PASSWORD'],
                env['RABBIT_HOST'], self.vhost),
            conf.get('DEFAULT', 'transport_url'))
        self.assertEqual(
            'mysql+pymysql://%s:%s@%s/%s?charset=utf8' % (
                env['DATABASE_USER'], env['DATABASE_PASSWORD'],
                env['DATABASE_HOST'], self.catalogue),
            conf.get('database', 'connection'))
        expected = {
            ('DEFAULT', 'host'): self.host,
            ('DEFAULT', 'debug'): 'True',
            ('DEFAULT', 'service_manager'): 'systemd',
            ('DEFAULT', 'state_path'): self.state_dir,
            ('storage', 'local_path'): os.path.join(self.state_dir,
                                                    'backups'),
            ('agent', 'root_path'): self.node,
            ('agent', 'drivers'): 'mysql,nova',
            ('mysql', 'host'): env['DATABASE_HOST'],
            ('mysql', 'user'): env['DATABASE_USER'],
            ('mysql', 'password'): env['DATABASE_PASSWORD'],
            ('mysql', 'databases'): self.data_db,
            ('keystone', 'units'): 'devstack@keystone',
        }
        self.assertEqual(expected, {k: conf.get(*k) for k in expected})
        self.assertTrue(conf.get('nova', 'units').startswith(
            'devstack@n-api,'))
        self.assertIn(self.vhost, fleet.rabbitmqctl('list_vhosts').stdout)

        # extra: both daemons run and the smoke backup is in the catalogue.
        for name in DAEMONS:
            self.assertTrue(alive(self.pid(name)), name)
        backups = self.manage_json('backup', 'list')
        self.assertEqual(1, len(backups), backups)
        backup = self.manage_json('backup', 'show', str(backups[0]['id']))
        self.assertEqual('SUCCEEDED', backup['status'], backup)
        stored = {(a['host'], a['service'], a['name'], a['status'])
                  for a in backup['artifacts']}
        self.assertEqual(
            {(self.host, 'mysql', self.data_db, 'available'),
             (self.host, 'nova', 'nova', 'available')}, stored)
        for artifact in backup['artifacts']:
            self.assertTrue(os.path.isfile(artifact['location']), artifact)
            self.assertTrue(artifact['location'].startswith(
                os.path.join(self.state_dir, 'backups') + os.sep))

        # unstack: both stop on SIGTERM (no SIGKILL needed).
        pids = {name: self.pid(name) for name in DAEMONS}
        unstack = self.devstack('unstack')
        self.assertNotIn('ignored SIGTERM', unstack.stdout)
        for name, pid in pids.items():
            self.assertIn('stop_process: %s stopped' % name, unstack.stdout)
            self.assertFalse(alive(pid), name)
            self.assertFalse(os.path.exists(
                os.path.join(self.dir, 'status', '%s.pid' % name)))

        # clean: state and archives are gone.
        self.assertTrue(os.path.isdir(self.state_dir))
        self.devstack('clean')
        self.assertFalse(os.path.exists(self.state_dir))

    def test_failed_smoke_backup_fails_the_stack(self):
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
        pids = {name: self.pid(name) for name in DAEMONS}
        for name, pid in pids.items():
            self.assertTrue(alive(pid), name)
        self.devstack('unstack')
        for name, pid in pids.items():
            self.assertFalse(alive(pid), name)
