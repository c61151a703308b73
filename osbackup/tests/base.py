"""Base test case: config fixture, temp dirs, no global state leaks."""

import os
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

    def write_key(self, name: str, data: bytes) -> str:
        """A key file in the test's state_path, readable by its owner only."""
        path = os.path.join(self.state_dir, name)
        with open(path, 'wb') as f:
            f.write(data)
        os.chmod(path, 0o600)
        return path

    def flags(self, group=None, **kw):
        """Override options for this test only."""
        self.cfg.config(group=group, **kw)
