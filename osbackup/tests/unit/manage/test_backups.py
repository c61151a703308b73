"""How backups are shown (issue 20.8)."""

import io

import fixtures

from osbackup.manage import backups
from osbackup.tests import base


def _backup(**kw):
    return dict({'id': 3, 'status': 'SUCCEEDED', 'policy': None,
                 'hosts': ['c1'], 'services': [], 'targets': ['local'],
                 'verified': None, 'created_at': 'x', 'finished_at': 'y',
                 'error': None, 'artifacts': [], 'tasks': []}, **kw)


class ShowTest(base.TestCase):

    def _show(self, backup):
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        backups.print_backup(backup)
        return [line for line in out.getvalue().splitlines()
                if line.startswith('| services ')][0]

    def test_no_service_named_means_all_as_in_list(self):
        self.assertIn('| all ', self._show(_backup()))

    def test_named_services(self):
        self.assertIn('| mysql,nova ',
                      self._show(_backup(services=['mysql', 'nova'])))
