"""Base test case: config fixture, temp dirs, no global state leaks."""

from unittest import mock

import fixtures
from oslo_config import fixture as config_fixture
from oslotest import base

import osbackup.conf

CONF = osbackup.conf.CONF


class TestCase(base.BaseTestCase):
    """Unit test base: a private config and a temp state_path."""

    def setUp(self):
        super().setUp()
        self.cfg = self.useFixture(config_fixture.Config(CONF))
        self.state_dir = self.useFixture(fixtures.TempDir()).path
        self.flags(state_path=self.state_dir)
        self.addCleanup(mock.patch.stopall)

    def flags(self, group=None, **kw):
        """Override options for this test only."""
        self.cfg.config(group=group, **kw)
