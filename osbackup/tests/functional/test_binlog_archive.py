"""The binlog archive driver against a private MariaDB server.

The server runs with log_bin, ROW format and GTIDs (never the shared
server). Each archive run ships what was written since the previous one;
the ranges chain up, and a binlog purged before it was shipped is a gap.
"""

import os
import shutil
import subprocess
import tempfile

from oslo_config import fixture as config_fixture
import testtools
import zstandard

from osbackup import artifact_kinds
from osbackup import binlog_chain
from osbackup.drivers import base
from osbackup.drivers import binlog_archive
from osbackup.storage import local
from osbackup.tests import base as test_base
from osbackup.tests.functional import mariadb_server

SERVER_ARGS = ('--binlog-format=ROW', '--log-slave-updates',
               '--gtid-domain-id=0')


class BinlogArchiveFunctionalTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.top = tempfile.mkdtemp(prefix='osbackup-binlog-ft-')
        self.addCleanup(shutil.rmtree, self.top, ignore_errors=True)
        self.server = mariadb_server.PrivateServer(
            os.path.join(self.top, 'server'), extra_args=SERVER_ARGS)
        self.addCleanup(self.server.stop)
        self.server.start()
        conf_fixture = self.useFixture(config_fixture.Config(test_base.CONF))
        conf_fixture.config(state_path=os.path.join(self.top, 'state'))
        conf_fixture.config(group='mysql', socket=self.server.socket,
                            user='root', password='',
                            binlog_archive_interval=1)
        self.store = os.path.join(self.top, 'store')
        self.storage = local.LocalStorage(test_base.CONF, path=self.store)
        self.driver = binlog_archive.BinlogDriver(test_base.CONF)
        self.segments = []
        self.runs = 0

    def archive(self):
        """One archive task, continuing where the catalogue says."""
        self.runs += 1
        last = self.segments[-1]['meta'] if self.segments else None
        ctx = base.TaskContext(
            task_id='t%d' % self.runs, backup_id=str(self.runs), host='db1',
            service='binlog', storage=self.storage,
            params={'binlog_from': last and {'file': last['file'],
                                             'position': last['end_pos']}})
        arts = self.driver.backup(ctx)
        self.segments += [dict(a.to_dict(), host='db1') for a in arts]
        return arts, ctx

    def restored_file(self, name):
        """A binlog file put back together from its archived segments."""
        out = b''
        for seg in self.segments:
            if seg['meta']['file'] == name:
                self.assertEqual(len(out), seg['meta']['start_pos'])
                with open(seg['location'], 'rb') as f:
                    out += zstandard.ZstdDecompressor().stream_reader(
                        f).read()
        return out

    def test_ranges_chain_and_replay_byte_for_byte(self):
        srv = self.server
        self.assertTrue(self.driver.is_present())
        srv.sql('CREATE DATABASE pitr; CREATE TABLE pitr.t '
                '(id INT PRIMARY KEY, v VARCHAR(20))')
        srv.sql("INSERT INTO pitr.t VALUES (1, 'one')")
        first, _ = self.archive()
        self.assertTrue(first)
        self.assertTrue(all(a.kind == artifact_kinds.BINLOG for a in first))
        # Nothing new: nothing shipped.
        self.assertEqual([], self.archive()[0])
        srv.sql("INSERT INTO pitr.t VALUES (2, 'two')")
        srv.sql('FLUSH BINARY LOGS')
        srv.sql("INSERT INTO pitr.t VALUES (3, 'three')")
        more, _ = self.archive()
        self.assertEqual(2, len(more))
        self.assertTrue(more[0].meta['closed'])
        self.assertFalse(more[1].meta['closed'])
        # The open file's first range and its continuation.
        self.assertEqual(0, more[1].meta['start_pos'])
        self.assertEqual(more[0].meta['file'], first[-1].meta['file'])
        self.assertEqual(first[-1].meta['end_pos'], more[0].meta['start_pos'])
        gtid = srv.sql('SELECT @@gtid_binlog_pos')
        self.assertEqual(gtid, more[-1].meta['gtid_end'])
        ranges = binlog_chain.ranges(self.segments)
        self.assertEqual(1, len(ranges))
        self.assertIsNone(ranges[0]['gap_before'])
        self.assertEqual(gtid, ranges[0]['gtid_end'])
        self.assertLessEqual(ranges[0]['start_time'], ranges[0]['end_time'])
        # Every archived file equals the server's, byte for byte, but for
        # the in-use flag the server clears when it closes a file.
        logs = dict(self.driver.binary_logs())
        directory = self.driver.log_dir()
        for name in logs:
            with open(os.path.join(directory, name), 'rb') as f:
                theirs = f.read()
            ours = binlog_archive.closed_copy(self.restored_file(name))
            if name != sorted(logs)[-1]:
                self.assertTrue(theirs == ours, name)
            else:
                self.assertTrue(theirs[:20] + theirs[22:] ==
                                ours[:20] + ours[22:], name)
        # And replays: the rows come back on an empty server.
        replay = os.path.join(self.top, 'replay')
        os.makedirs(replay)
        paths = []
        for name in sorted(logs):
            paths.append(os.path.join(replay, name))
            with open(paths[-1], 'wb') as f:
                f.write(self.restored_file(name))
        other = mariadb_server.PrivateServer(os.path.join(self.top, 'other'),
                                             extra_args=SERVER_ARGS)
        self.addCleanup(other.stop)
        other.start()
        events = subprocess.run(['mariadb-binlog'] + paths, check=True,
                                capture_output=True).stdout
        subprocess.run(['mariadb', '--no-defaults', '-uroot', '-S',
                        other.socket], input=events, check=True)
        self.assertEqual('1\tone\n2\ttwo\n3\tthree',
                         other.sql('SELECT * FROM pitr.t ORDER BY id'))

    def test_purged_before_shipped_is_a_gap(self):
        srv = self.server
        srv.sql('CREATE DATABASE pitr; CREATE TABLE pitr.t (id INT)')
        self.archive()
        srv.sql('INSERT INTO pitr.t VALUES (1)')
        srv.sql('FLUSH BINARY LOGS')
        srv.sql('INSERT INTO pitr.t VALUES (2)')
        srv.sql('FLUSH BINARY LOGS')
        current = srv.sql('SHOW MASTER STATUS').split('\t')[0]
        srv.sql("PURGE BINARY LOGS TO '%s'" % current)
        # A busy server may keep a log it still needs for crash recovery.
        oldest = srv.sql('SHOW BINARY LOGS').split()[0]
        self.assertNotEqual('binlog.000001', oldest)
        srv.sql('INSERT INTO pitr.t VALUES (3)')
        arts, ctx = self.archive()
        self.assertIn('purged before they were archived',
                      arts[0].meta['gap'])
        self.assertIn('Break in the binlog chain', ctx.warnings[0])
        ranges = binlog_chain.ranges(self.segments)
        self.assertEqual(2, len(ranges))
        self.assertIn('purged', ranges[1]['gap_before'])
        self.assertEqual(oldest, ranges[1]['first_file'])
