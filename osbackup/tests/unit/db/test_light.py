"""The light read path of ``agent list`` on SQLite, and when it steps aside."""

import os
import sqlite3

import fixtures

from osbackup.db import api
from osbackup.db import light
from osbackup.tests import base
from osbackup.tests import light_catalogue_cases


class SQLiteLightCatalogueTest(light_catalogue_cases.LightCatalogueCases,
                               base.TestCase):

    def setUp(self):
        super().setUp()
        top = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(top, 'catalogue.sqlite')
        self.url = 'sqlite:///' + self.path
        api.Catalogue(self.url).sync()

    def test_a_schema_not_at_head_takes_the_full_catalogue(self):
        with sqlite3.connect(self.path) as db:
            db.execute("UPDATE alembic_version SET version_num = '0001'")
        self.assertIsNone(light.LightCatalogue.open(self.url))

    def test_what_it_does_not_speak_takes_the_full_catalogue(self):
        for url in ('sqlite://', 'sqlite:///' + self.path + '.missing',
                    'postgresql://u@h/db',
                    'mysql+pymysql://u@h/db?ssl_ca=/x',
                    'mysql://u@h/db'):
            self.assertIsNone(light.LightCatalogue.open(url), url)

    def test_a_server_that_refuses_takes_the_full_catalogue(self):
        self.assertIsNone(light.LightCatalogue.open(
            'mysql+pymysql://u:p@127.0.0.1:1/db'))

    def test_reads_only(self):
        fast = light.LightCatalogue.open(self.url)
        self.addCleanup(fast.close)
        self.assertRaises(sqlite3.OperationalError, fast._fetch,
                          'DELETE FROM agents')
