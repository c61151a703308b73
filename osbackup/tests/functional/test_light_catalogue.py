"""The light read path of ``agent list`` on a real MariaDB catalogue."""

import uuid

from osbackup.db import api
from osbackup.tests import base
from osbackup.tests.functional import fleet
from osbackup.tests import light_catalogue_cases


class MariaDBLightCatalogueTest(light_catalogue_cases.LightCatalogueCases,
                                base.TestCase):

    def setUp(self):
        super().setUp()
        fleet.require_services()
        name = 'osbackup_ft_light_%s' % uuid.uuid4().hex[:8]
        fleet.sql('CREATE DATABASE %s' % name)
        self.addCleanup(fleet.sql, 'DROP DATABASE IF EXISTS %s' % name)
        self.url = fleet.DB_URL + name + '?charset=utf8mb4'
        api.Catalogue(self.url).sync()
