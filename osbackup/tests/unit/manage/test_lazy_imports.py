"""osbackup-manage loads the heavy libraries only for commands using them.

Each command runs in a new interpreter (as an operator's does), which then
reports the modules it loaded: importing oslo.messaging, SQLAlchemy or the
object storage clients costs a start-up that ``--help`` and the catalogue
commands must not pay (issue 19 §4).
"""

import json
import os
import subprocess
import sys
import textwrap

from osbackup.db import api as db_api
from osbackup.tests import base

#: Never needed to print the usage.
HEAVY = ('oslo_messaging', 'sqlalchemy', 'oslo_db.sqlalchemy', 'alembic',
         'pymysql', 'zstandard', 'boto3', 'botocore', 'swiftclient',
         'keystoneauth1', 'kombu', 'futurist', 'eventlet',
         'prometheus_client', 'cryptography')
#: Not needed by a command that only reads the catalogue.
BUS_AND_STORAGE = ('oslo_messaging', 'kombu', 'futurist', 'eventlet',
                   'alembic', 'zstandard', 'boto3', 'botocore',
                   'swiftclient', 'keystoneauth1', 'prometheus_client')

_RUN = textwrap.dedent('''
    import json, sys
    from osbackup.cmd import manage
    try:
        code = manage.main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({'code': code, 'modules': sorted(sys.modules)}),
          file=sys.stderr)
''')


class LazyImportTest(base.TestCase):

    def run_manage(self, *argv) -> tuple[int, set, str]:
        """Exit code, loaded modules and output (stdout, stderr)."""
        env = dict(os.environ, HOME=self.state_dir)
        proc = subprocess.run([sys.executable, '-c', _RUN, *argv],
                              capture_output=True, text=True, env=env,
                              cwd=self.state_dir, timeout=60)
        *errors, last = proc.stderr.strip().splitlines()
        report = json.loads(last)
        return (report['code'], set(report['modules']),
                proc.stdout + '\n'.join(errors))

    def fleet_config(self) -> str:
        """A fleet's config (a broker named) with a synced SQLite catalogue."""
        connection = 'sqlite:///%s/catalogue.sqlite' % self.state_dir
        db_api.Catalogue(connection).sync()
        path = os.path.join(self.state_dir, 'osbackup.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\ntransport_url = rabbit://u:p@127.0.0.1:1/\n'
                    '[database]\nconnection = %s\n' % connection)
        return path

    def assertNotLoaded(self, names, modules):
        loaded = [n for n in names if n in modules]
        self.assertEqual([], loaded, 'loaded although not needed')

    def test_help_loads_no_heavy_library(self):
        code, modules, _ = self.run_manage('--help')
        self.assertEqual(0, code)
        # The command really ran: its categories were loaded for the usage.
        self.assertIn('osbackup.manage.categories', modules)
        self.assertNotLoaded(HEAVY, modules)

    def test_action_help_loads_no_heavy_library(self):
        code, modules, _ = self.run_manage('backup', 'check', '--help')
        self.assertEqual(0, code)
        self.assertNotLoaded(HEAVY, modules)

    def test_agent_list_reads_the_catalogue_without_the_bus(self):
        code, modules, err = self.run_manage(
            '--config-file', self.fleet_config(), 'agent', 'list', '--json')
        self.assertEqual(0, code, err)
        # Fleet mode although oslo.messaging never registered transport_url.
        self.assertNotIn('all-in-one', err)
        # Read over the plain DB-API: no ORM, no oslo.db (issue 19 §4).
        self.assertIn('osbackup.db.light', modules)
        self.assertNotLoaded(BUS_AND_STORAGE + ('sqlalchemy', 'oslo_db.api',
                                                'oslo_db.sqlalchemy'),
                             modules)

    def test_backup_check_reads_the_catalogue_without_the_bus(self):
        code, modules, out = self.run_manage(
            '--config-file', self.fleet_config(), 'backup', 'check')
        # The catalogue was read (not unreachable): it is empty.
        self.assertEqual(3, code, out)
        self.assertIn('OSBACKUP UNKNOWN - no backup of anything', out)
        self.assertNotLoaded(BUS_AND_STORAGE, modules)

    def test_no_transport_url_is_still_all_in_one(self):
        path = os.path.join(self.state_dir, 'local.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s\n' % self.state_dir)
        code, modules, err = self.run_manage('--config-file', path, 'agent',
                                             'list', '--json')
        self.assertEqual(0, code, err)
        self.assertIn('all-in-one mode: no transport_url in %s' % path, err)
