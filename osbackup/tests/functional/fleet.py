"""A real fleet for functional tests: conductor and agents as processes.

Each fleet gets a unique control exchange, host names and a catalogue
database of its own on the machine's MariaDB, so runs never see each
other's messages or rows. Nothing is faked: RabbitMQ, MariaDB, mysqldump
and the osbackup commands are the real ones.
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

import testtools
import zstandard

RABBIT_URL = os.environ.get('OSBACKUP_TEST_TRANSPORT_URL',
                            'rabbit://guest:guest@127.0.0.1:5672/')
RABBIT_USER = os.environ.get('OSBACKUP_TEST_RABBIT_USER', 'guest')
DB_ADMIN = ['mysql', '-uroot', '-h', 'localhost']
DB_URL = os.environ.get('OSBACKUP_TEST_DB_URL',
                        'mysql+pymysql://root@127.0.0.1:3306/')


class ServiceUnavailable(Exception):
    pass


def require_services():
    """Fail loudly (never skip) when the broker or database is down."""
    for name, port in (('RabbitMQ', 5672), ('MariaDB', 3306)):
        try:
            socket.create_connection(('127.0.0.1', port), timeout=3).close()
        except OSError as exc:
            raise ServiceUnavailable(
                '%s is not reachable on 127.0.0.1:%d (%s); .ci/run starts '
                'it' % (name, port, exc))


def sql(statement, database=None):
    cmd = DB_ADMIN + (['-D', database] if database else []) + \
        ['--batch', '--skip-column-names', '-e', statement]
    return subprocess.run(cmd, check=True, capture_output=True,
                          text=True).stdout


def rabbitmqctl(*argv, check=True):
    return subprocess.run(['rabbitmqctl', '-q'] + list(argv), check=check,
                          capture_output=True, text=True, timeout=120)


def write_file(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


def make_controller_tree(root):
    """A controller: nova, glance, keystone, cinder, swift."""
    for svc in ('nova', 'glance', 'keystone', 'cinder', 'swift'):
        write_file(os.path.join(root, 'etc', svc, '%s.conf' % svc),
                   '[DEFAULT]\ndebug = False\n[database]\nconnection = '
                   'mysql+pymysql://%s:secret@db/%s\n' % (svc, svc), 0o640)
        write_file(os.path.join(root, 'var/log', svc, '%s-api.log' % svc),
                   ''.join('line %d of %s\n' % (i, svc)
                           for i in range(2000)))
        write_file(os.path.join(root, 'var/lib', svc, 'state'),
                   os.urandom(4096), 0o600)
    write_file(os.path.join(root, 'etc/nova/api-paste.ini'), '[pipeline]\n')
    os.symlink('nova.conf', os.path.join(root, 'etc/nova/nova.conf.link'))
    for i in range(3):
        write_file(os.path.join(root, 'etc/keystone/fernet-keys', str(i)),
                   os.urandom(32).hex(), 0o600)
    write_file(os.path.join(root, 'var/lib/glance/images/img-1'),
               os.urandom(100000))
    for ring in ('account', 'container', 'object'):
        write_file(os.path.join(root, 'etc/swift', '%s.ring.gz' % ring),
                   os.urandom(2048))
        write_file(os.path.join(root, 'etc/swift', '%s.builder' % ring),
                   os.urandom(4096))


def make_compute_tree(root):
    """A compute node: nova only, with instance disks to exclude."""
    write_file(os.path.join(root, 'etc/nova/nova.conf'),
               '[DEFAULT]\ncompute_driver = libvirt.LibvirtDriver\n', 0o640)
    write_file(os.path.join(root, 'var/lib/nova/instances/'
                            '6f1c/disk'), os.urandom(200000))
    write_file(os.path.join(root, 'var/lib/nova/keys/key'), 'k', 0o600)
    write_file(os.path.join(root, 'var/log/nova/nova-compute.log'),
               'started\n')


def hostile_archive(member: tarfile.TarInfo, data: bytes = b'',
                    then=()) -> bytes:
    """A tar.zst of etc/nova holding ``member``, its manifest unaware.

    ``then``: more (member, data) pairs after it.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        top = tarfile.TarInfo('etc/nova')
        top.type = tarfile.DIRTYPE
        top.mode = 0o755
        t.addfile(top)
        for member, data in [(member, data), *then]:
            member.size = len(data)
            t.addfile(member, io.BytesIO(data) if data else None)
        manifest = json.dumps({'format': 1, 'paths': ['etc/nova'],
                               'excludes': [], 'entries': [
                                   {'path': 'etc/nova', 'type': 'dir'}]})
        info = tarfile.TarInfo('.osbackup-manifest.json')
        info.size = len(manifest)
        t.addfile(info, io.BytesIO(manifest.encode()))
    return zstandard.ZstdCompressor().compress(buf.getvalue())


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Fleet:
    """Config, processes and CLI of one isolated osbackup deployment."""

    def __init__(self, base_dir=None, broker=None):
        """``broker``: a private RabbitMQ node (rabbitmq_server.py)."""
        require_services()
        self.ctl = broker.ctl if broker is not None else rabbitmqctl
        self.id = uuid.uuid4().hex[:8]
        self.dir = base_dir or tempfile.mkdtemp(prefix='osbackup-ft-')
        self.exchange = 'osbackup_ft_%s' % self.id
        self.catalogue_db = 'osbackup_ft_%s' % self.id
        #: Database accounts a test makes are named so (see write_conf).
        self.account_pattern = 'ft%s_*' % self.id
        self.storage = os.path.join(self.dir, 'storage')
        self.procs = {}
        self.databases = []
        #: ``'user'@'host'`` accounts and roles made by create_account.
        self.accounts = []
        # A vhost per fleet, as production should use one for osbackup:
        # queue names derive from topics, not exchanges, so fleets sharing
        # a vhost would consume each other's reports.
        self.vhost = 'osbackup_ft_%s' % self.id
        self.ctl('add_vhost', self.vhost)
        self.ctl('set_permissions', '-p', self.vhost, RABBIT_USER,
                 '.*', '.*', '.*')
        url = broker.url if broker is not None else RABBIT_URL
        self.transport_url = url.rstrip('/') + '/' + self.vhost
        sql('CREATE DATABASE %s' % self.catalogue_db)
        # The key every process of the fleet signs its messages with.
        self.key_file = os.path.join(self.dir, 'rpc.key')
        write_file(self.key_file, os.urandom(32).hex() + '\n', 0o600)

    # -- configuration -----------------------------------------------

    def conf_path(self, name):
        return os.path.join(self.dir, '%s.conf' % name)

    def write_conf(self, name, host, sections=None):
        base = {
            'DEFAULT': {'host': host, 'transport_url': self.transport_url,
                        'control_exchange': self.exchange,
                        'rpc_signing_key_file': self.key_file,
                        'state_path': os.path.join(self.dir, 'state', host),
                        'debug': 'True',
                        'log_file': os.path.join(self.dir, '%s.log' % name)},
            'database': {'connection': DB_URL + self.catalogue_db},
            'storage': {'local_path': self.storage},
            # The server is shared: a fleet's accounts artifact holds its
            # own accounts only, and a restore loads no one else's.
            'mysql': {'accounts': self.account_pattern},
            'conductor': {'periodic_interval': '2', 'agent_down_time': '15',
                          'run_policies': 'False'},
            'agent': {'report_interval': '2', 'progress_interval': '1',
                      'unit_check_timeout': '10', 'unit_check_settle': '1'},
        }
        for section, values in (sections or {}).items():
            base.setdefault(section, {}).update(values)
        with open(self.conf_path(name), 'w') as f:
            for section, values in base.items():
                f.write('[%s]\n' % section)
                for key, value in values.items():
                    f.write('%s = %s\n' % (key, value))
        return self.conf_path(name)

    def host(self, role):
        return 'ft-%s-%s' % (role, self.id)

    def node_root(self, role):
        return os.path.join(self.dir, 'nodes', role)

    # -- processes -----------------------------------------------------

    def start(self, name, module, conf, env=None, prefix=()):
        """Run ``module``; ``prefix``: a command to run it under."""
        log = open(os.path.join(self.dir, '%s.out' % name), 'ab')
        # A prefix such as faketime forks the program and waits for it: a
        # signal to the prefix alone would leave the program running, so
        # it gets a process group of its own and the signal goes to all.
        proc = subprocess.Popen(
            list(prefix) + [sys.executable, '-m', module, '--config-file',
                            conf],
            stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, **(env or {})),
            start_new_session=bool(prefix))
        proc.grouped = bool(prefix)
        self.procs[name] = proc
        return proc

    def start_conductor(self, name='conductor', sections=None):
        conf = self.write_conf(name, self.host(name), sections)
        self.manage('db', 'sync', conf=conf)
        return self.start(name, 'osbackup.cmd.conductor', conf)

    def start_agent(self, role, sections=None, env=None, prefix=()):
        sections = dict(sections or {})
        sections.setdefault('agent', {})
        sections['agent'] = dict(sections['agent'],
                                 root_path=self.node_root(role))
        conf = self.write_conf(role, self.host(role), sections)
        return self.start(role, 'osbackup.cmd.agent', conf, env, prefix)

    def standin_sections(self, role, units):
        """Run units as stand-in daemons through the command manager."""
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'standin.py')
        base = '%s %s --dir %s --root %s' % (
            sys.executable, script, self.units_dir(role),
            self.node_root(role))
        sections = {'DEFAULT': {'service_manager': 'command'},
                    'service_command': {a: '%s %s {unit}' % (base, a)
                                        for a in ('start', 'stop', 'status')}}
        for service, names in units.items():
            sections[service] = {'units': ','.join(names)}
        return sections

    def python_exe(self, name, script):
        """An executable ``name`` running ``script`` with this Python."""
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write('#!/bin/sh\nexec %s %s "$@"\n' % (sys.executable, script))
        os.chmod(path, 0o755)
        return path

    def units_dir(self, role):
        return os.path.join(self.dir, 'units', role)

    def unit(self, role, action, unit):
        """Run the stand-in control command; return its exit code."""
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'standin.py')
        return subprocess.run(
            [sys.executable, script, '--dir', self.units_dir(role), '--root',
             self.node_root(role), action, unit]).returncode

    def unit_events(self, role):
        try:
            with open(os.path.join(self.units_dir(role), 'events.log')) as f:
                return [line.split() for line in f]
        except FileNotFoundError:
            return []

    def stop(self, name, sig=signal.SIGTERM, timeout=20):
        proc = self.procs.pop(name)
        grouped = getattr(proc, 'grouped', False)

        def signal_it(signum):
            if grouped:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signum)
            elif proc.poll() is None:
                proc.send_signal(signum)

        if grouped or proc.poll() is None:
            signal_it(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_it(signal.SIGKILL)
            proc.wait()
            raise AssertionError('%s did not stop within %d s after %s'
                                 % (name, timeout, sig))
        finally:
            if grouped:
                # The prefix may end before its program: give the program
                # the same time to stop, then kill what is left.
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and _group_alive(proc.pid):
                    time.sleep(0.1)
                signal_it(signal.SIGKILL)

    def log(self, name):
        with open(os.path.join(self.dir, '%s.out' % name), 'rb') as f:
            out = f.read().decode(errors='replace')
        try:
            with open(os.path.join(self.dir, '%s.log' % name)) as f:
                out += f.read()
        except FileNotFoundError:
            pass
        return out

    # -- CLI -----------------------------------------------------------

    def manage(self, *argv, conf=None, check=True, timeout=300):
        cmd = [sys.executable, '-m', 'osbackup.cmd.manage', '--config-file',
               conf or self.conf_path('conductor')] + list(argv)
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError('%s exited %d\nstdout: %s\nstderr: %s'
                                 % (' '.join(argv), proc.returncode,
                                    proc.stdout, proc.stderr))
        return proc

    def plant(self, art: dict, data: bytes) -> None:
        """Replace a stored artifact, its catalogue checksum too.

        An attacker with write access to both: only what a restore checks
        beyond the checksum can stop it.
        """
        with open(art['location'], 'wb') as f:
            f.write(data)
        sql("UPDATE artifacts SET sha256 = '%s', size = %d WHERE id = %d"
            % (hashlib.sha256(data).hexdigest(), len(data), art['id']),
            self.catalogue_db)

    def manage_json(self, *argv, **kw):
        proc = self.manage(*argv, '--format', 'json', **kw)
        return json.loads(proc.stdout), proc

    def wait_for_agents(self, hosts, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            agents, _ = self.manage_json('agent', 'list')
            up = {a['host'] for a in agents if a['state'] == 'up'}
            if set(hosts) <= up:
                return agents
            time.sleep(0.5)
        raise AssertionError('agents %s not up after %d s; logs:\n%s'
                             % (hosts, timeout, '\n'.join(
                                 self.log(n)[-3000:] for n in self.procs)))

    # -- databases -----------------------------------------------------

    def create_database(self, suffix, tables):
        name = 'ft%s_%s' % (self.id, suffix)
        sql('CREATE DATABASE %s' % name)
        self.databases.append(name)
        for table, rows in tables.items():
            sql('CREATE TABLE %s (id INT PRIMARY KEY, name VARCHAR(64), '
                'data BLOB) ENGINE=InnoDB' % table, name)
            values = ','.join("(%d, 'row-%d', X'%s')"
                              % (i, i, os.urandom(16).hex())
                              for i in range(rows))
            sql('INSERT INTO %s VALUES %s' % (table, values), name)
        return name

    def create_account(self, suffix, host=None, grants=(), password='pw'):
        """Make account ``ft<id>_<suffix>``@``host``; return its name.

        A role when ``host`` is None; ``grants`` are like ``SELECT ON
        db.*``. Named so, the fleet's accounts artifact keeps it
        (write_conf), and cleanup drops it.
        """
        name = 'ft%s_%s' % (self.id, suffix)
        account = "'%s'@'%s'" % (name, host) if host else "'%s'" % name
        sql('CREATE USER %s IDENTIFIED BY \'%s\'' % (account, password)
            if host else 'CREATE ROLE %s' % account)
        self.accounts.append(account)
        for grant in grants:
            sql('GRANT %s TO %s' % (grant, account))
        return name

    def grants(self, account):
        """SHOW GRANTS of an account (``'user'@'host'``), or None."""
        try:
            return sorted(sql('SHOW GRANTS FOR %s' % account).splitlines())
        except subprocess.CalledProcessError:
            return None

    def checksums(self, database):
        tables = sql('SHOW TABLES', database).split()
        return {t: sql('CHECKSUM TABLE %s' % t, database).split()[-1]
                for t in tables}

    # -- teardown --------------------------------------------------------

    def cleanup(self):
        for name in list(self.procs):
            try:
                self.stop(name)
            except AssertionError:
                pass
        self._kill_standins()
        for db in self.databases + [self.catalogue_db]:
            sql('DROP DATABASE IF EXISTS %s' % db)
        for account in self.accounts:
            sql('DROP %s IF EXISTS %s' % ('USER' if '@' in account
                                          else 'ROLE', account))
        # Deleting the vhost deletes its queues, which oslo.messaging
        # never removes by itself.
        self.ctl('delete_vhost', self.vhost, check=False)
        if not os.environ.get('OSBACKUP_TEST_KEEP'):
            shutil.rmtree(self.dir, ignore_errors=True)

    def _kill_standins(self):
        units = os.path.join(self.dir, 'units')
        for dirpath, _dirs, files in os.walk(units):
            for name in files:
                if name.endswith('.pid'):
                    try:
                        with open(os.path.join(dirpath, name)) as f:
                            os.kill(int(f.read()), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass


class RestoreCommand:
    """``restore create --wait`` for test cases holding a ``fleet``."""

    fleet = None

    def restore(self, backup_id, *argv, expect='SUCCEEDED'):
        restore, proc = self.fleet.manage_json(
            'restore', 'create', str(backup_id), '--wait', *argv,
            check=False)
        self.assertEqual(expect, restore['status'],
                         '%s\n%s' % (proc.stderr, restore))
        self.assertEqual(0 if expect == 'SUCCEEDED' else 1, proc.returncode)
        return restore


class FleetTestCase(testtools.TestCase):
    """Tests sharing one fleet per class, which ``build_fleet`` sets up.

    A build that fails cleans up what it made; a class that makes more
    than the fleet (users, mounts, an ssh server) removes it in
    ``cleanup_fleet``.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fleet = Fleet()
        try:
            cls.build_fleet(cls.fleet)
        except Exception:
            cls.cleanup_fleet()
            raise

    @classmethod
    def build_fleet(cls, fleet: Fleet) -> None:
        raise NotImplementedError

    @classmethod
    def cleanup_fleet(cls) -> None:
        cls.fleet.cleanup()

    @classmethod
    def tearDownClass(cls):
        cls.cleanup_fleet()
        super().tearDownClass()

    def deep_verify_problem(self, backup_id) -> tuple[dict, dict]:
        """``backup verify --deep`` of a backup with one bad copy."""
        result, proc = self.fleet.manage_json(
            'backup', 'verify', str(backup_id), '--deep', check=False)
        self.assertEqual(1, proc.returncode)
        self.assertEqual('CORRUPT', result['status'])
        (problem,) = result['problems']
        return problem, result
