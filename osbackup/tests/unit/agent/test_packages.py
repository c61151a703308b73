"""Package versions from dpkg-query, cached for the heartbeat."""

import subprocess
import types

from osbackup.agent import packages
from osbackup.tests import base

OUT = (b'nova-common\t3:31.0.0-0ubuntu1\tii \n'
       b'keystone\t2:27.0.0-1\trc \n')


class PackageVersionsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.calls = []
        self.now = 1000.0

    def run_(self, argv, **kw):
        self.calls.append(argv)
        # dpkg-query exits 1 when a package is unknown, and lists the rest.
        return types.SimpleNamespace(returncode=1, stdout=OUT, stderr=b'')

    def versions(self, interval=300, which='/usr/bin/dpkg-query'):
        return packages.PackageVersions(interval, run=self.run_,
                                        clock=lambda: self.now,
                                        which=lambda name: which)

    def test_one_query_for_all_then_cached(self):
        pv = self.versions()
        self.assertEqual({'nova-common': '3:31.0.0-0ubuntu1'},
                         pv.versions(['nova-common', 'keystone', 'nope']))
        self.assertEqual(1, len(self.calls))
        self.assertEqual(['dpkg-query', '-W'], self.calls[0][:2])
        self.assertEqual(['keystone', 'nope', 'nova-common'],
                         self.calls[0][3:])
        self.now += 299
        pv.versions(['nova-common'])
        pv.of_services(['nova', 'keystone'])
        self.assertEqual(1, len(self.calls))
        self.now += 1
        self.assertEqual({'nova-common': '3:31.0.0-0ubuntu1'},
                         pv.of_services(['nova', 'unknown-service']))
        self.assertEqual([['dpkg-query', '-W', self.calls[0][2],
                           'nova-common']], self.calls[1:])

    def test_without_dpkg_or_when_off_nothing_runs(self):
        self.assertEqual({}, self.versions(which=None).versions(['nova']))
        self.assertEqual({}, self.versions(interval=0).versions(['nova']))
        self.assertEqual([], self.calls)

    def test_a_failing_query_is_no_version(self):
        def fail(argv, **kw):
            raise subprocess.TimeoutExpired(argv, 30)
        pv = packages.PackageVersions(300, run=fail,
                                      which=lambda name: '/x')
        self.assertEqual({}, pv.versions(['nova-common']))

    def test_stamp(self):
        pv = self.versions()
        stamp = pv.stamp('nova')
        self.assertEqual({'name': 'nova-common',
                          'version': '3:31.0.0-0ubuntu1'}, stamp['package'])
        self.assertTrue(stamp['osbackup_version'])
        self.assertNotIn('package', pv.stamp('keystone'))   # removed
        self.assertNotIn('package', pv.stamp('no-such-service'))
