"""The schema version check without alembic agrees with alembic (19)."""

import os
import sys
from unittest import mock

from alembic import migration as alembic_migration
from alembic import script

from osbackup.db import api
from osbackup.db import migration
from osbackup.tests import base


class VersionTest(base.TestCase):

    def test_head_is_alembics_head(self):
        self.assertEqual(script.ScriptDirectory(migration._SCRIPTS)
                         .get_current_head(), migration.head())

    def test_every_migration_file_is_numbered_like_its_revision(self):
        # head() relies on it: a file named otherwise would be missed.
        scripts = script.ScriptDirectory(migration._SCRIPTS)
        for rev in scripts.walk_revisions():
            self.assertTrue(os.path.basename(rev.path).startswith(
                rev.revision + '_'), rev.path)

    def test_current_is_alembics_current(self):
        cat = api.Catalogue('sqlite:///%s/c.sqlite' % self.state_dir)
        self.assertIsNone(migration.current(cat.engine))
        cat.sync()
        with cat.engine.connect() as conn:
            expected = alembic_migration.MigrationContext.configure(
                conn).get_current_revision()
        self.assertEqual(expected, migration.current(cat.engine))
        self.assertEqual(migration.head(), migration.current(cat.engine))

    def test_commands_that_check_the_schema_do_not_load_alembic(self):
        cat = api.Catalogue('sqlite:///%s/c.sqlite' % self.state_dir)
        cat.sync()
        with mock.patch.dict(sys.modules):
            for name in [m for m in sys.modules if m.startswith('alembic')]:
                del sys.modules[name]
            cat.check_schema()
            self.assertNotIn('alembic', sys.modules)
