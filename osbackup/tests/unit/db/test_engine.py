"""The catalogue engine set-up (issue 18.5: no SQL mode warning)."""

import fixtures

from osbackup.db import api
from osbackup.db import engine
from osbackup.tests import base


class EngineOptionsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.create = self.useFixture(fixtures.MockPatch(
            'oslo_db.sqlalchemy.engines.create_engine')).mock

    def test_catalogue_sets_the_sql_mode_from_the_config(self):
        self.flags(group='database', connection='mysql+pymysql://u@db/o',
                   mysql_sql_mode='STRICT_ALL_TABLES')
        api.Catalogue.from_conf(self.cfg.conf)
        kw = self.create.call_args.kwargs
        self.assertEqual('STRICT_ALL_TABLES', kw['mysql_sql_mode'])
        self.assertEqual(self.cfg.conf.database.connection_recycle_time,
                         kw['connection_recycle_time'])

    def test_default_mode_is_traditional(self):
        api.Catalogue('mysql+pymysql://u@db/o')
        self.assertEqual(engine.SQL_MODE,
                         self.create.call_args.kwargs['mysql_sql_mode'])
        self.assertEqual('TRADITIONAL',
                         self.cfg.conf.database.mysql_sql_mode)
