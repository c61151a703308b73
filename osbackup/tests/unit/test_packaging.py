"""Checks of what operators install: systemd units and the sample config."""

import configparser
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile

import fixtures

from osbackup.conf import opts
from osbackup.tests import base

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))
UNIT_DIR = os.path.join(ROOT, 'etc', 'systemd')
UNITS = {'osbackup-conductor': 'osbackup.cmd.conductor',
         'osbackup-agent': 'osbackup.cmd.agent'}
GENERATOR_CONF = os.path.join(ROOT, 'etc', 'osbackup',
                              'osbackup-config-generator.conf')
SAMPLE = os.path.join(ROOT, 'etc', 'osbackup', 'osbackup.conf.sample')

# Help texts may start with the name of a program, which is lower case by
# convention ("mysqldump (or mariadb-dump) executable.").


def _unit_path(name):
    return os.path.join(UNIT_DIR, '%s.service' % name)


def _parse_unit(path):
    # systemd allows a key more than once ("ExecStart=" then a command);
    # strict=False keeps the last value, as systemd does for most keys.
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=('#', ';'),
                                       empty_lines_in_values=False)
    parser.optionxform = str
    with open(path) as f:
        parser.read_file(f, source=path)
    return parser


def _runnable(name, module):
    """A command line that really exists here for the unit's ExecStart."""
    script = shutil.which(name)
    if script:
        return script
    return '%s -m %s' % (sys.executable, module)


class TestSystemdUnits(base.TestCase):

    def test_units_parse_with_required_keys(self):
        # Runs everywhere, with or without systemd-analyze.
        for name in UNITS:
            unit = _parse_unit(_unit_path(name))
            self.assertEqual(['Unit', 'Service', 'Install'], unit.sections(),
                             name)
            service = unit['Service']
            self.assertEqual('simple', service['Type'], name)
            self.assertEqual('on-failure', service['Restart'], name)
            self.assertEqual(
                '/usr/local/bin/%s --config-file '
                '/etc/osbackup/osbackup.conf' % name,
                service['ExecStart'], name)
            self.assertIn('network-online.target', unit['Unit']['After'])
            self.assertIn('network-online.target', unit['Unit']['Wants'])
            self.assertEqual('multi-user.target',
                             unit['Install']['WantedBy'])
            self.assertEqual('yes', service['NoNewPrivileges'], name)
            self.assertEqual('yes', service['PrivateTmp'], name)

    def test_conductor_is_unprivileged_and_confined(self):
        unit = _parse_unit(_unit_path('osbackup-conductor'))
        service = unit['Service']
        self.assertEqual('osbackup', service['User'])
        self.assertEqual('strict', service['ProtectSystem'])
        self.assertEqual('/var/lib/osbackup', service['ReadWritePaths'])
        self.assertEqual('osbackup', service['StateDirectory'])
        self.assertEqual('yes', service['ProtectHome'])
        self.assertEqual('', service['CapabilityBoundingSet'])
        # Soft dependencies only: a remote broker or database is normal.
        self.assertNotIn('Requires', unit['Unit'])
        for dep in ('rabbitmq-server.service', 'mariadb.service'):
            self.assertIn(dep, unit['Unit']['After'].split())
            self.assertIn(dep, unit['Unit']['Wants'].split())

    def test_agent_can_restore(self):
        unit = _parse_unit(_unit_path('osbackup-agent'))
        service = unit['Service']
        self.assertEqual('root', service['User'])
        # Any of these would stop restores from writing /etc/<svc>,
        # /var/lib/<svc> or setting owners and modes.
        for key in ('ProtectSystem', 'ProtectHome', 'ReadOnlyPaths',
                    'InaccessiblePaths', 'CapabilityBoundingSet',
                    'RestrictSUIDSGID', 'DynamicUser'):
            self.assertNotIn(key, service)
        self.assertEqual('mixed', service['KillMode'])

    def test_systemd_analyze_verify(self):
        analyze = shutil.which('systemd-analyze')
        if not analyze:
            self.skipTest('systemd-analyze is not installed; the units were '
                          'only checked by test_units_parse_with_required_'
                          'keys')
        tmp = self.useFixture(fixtures.TempDir()).path
        paths = []
        for name, module in UNITS.items():
            with open(_unit_path(name)) as f:
                text = f.read()
            # verify checks that ExecStart's program exists: point it at
            # the one installed in this environment, keep everything else.
            text, count = re.subn(r'^ExecStart=/usr/local/bin/%s ' % name,
                                  'ExecStart=%s ' % _runnable(name, module),
                                  text, flags=re.M)
            self.assertEqual(1, count, name)
            path = os.path.join(tmp, '%s.service' % name)
            with open(path, 'w') as f:
                f.write(text)
            paths.append(path)
        proc = subprocess.run([analyze, 'verify'] + paths,
                              capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, SYSTEMD_PAGER='cat'))
        # verify exits 0 even for unknown keys or bad values ("ignoring"),
        # so every message about our units is a failure. Messages about
        # other units of this host are not ours to judge.
        ours = [line for line in (proc.stdout + proc.stderr).splitlines()
                if tmp in line or 'osbackup-' in line]
        self.assertEqual((0, []), (proc.returncode, ours),
                         proc.stdout + proc.stderr)


class TestSampleConfig(base.TestCase):

    def test_sample_is_current(self):
        with tempfile.NamedTemporaryFile(suffix='.conf') as tmp:
            proc = subprocess.run(
                [sys.executable, '-m', 'oslo_config.generator',
                 '--config-file', GENERATOR_CONF, '--output-file', tmp.name],
                cwd=ROOT, capture_output=True, text=True, timeout=120)
            self.assertEqual(0, proc.returncode, proc.stderr)
            generated = tmp.read().decode()
        with open(SAMPLE) as f:
            committed = f.read()
        if generated != committed:
            diff = difflib.unified_diff(
                committed.splitlines(True), generated.splitlines(True),
                'committed', 'generated')
            self.fail('%s is stale: run "tox -e genconfig" and commit the '
                      'result.\n%s'
                      % (os.path.relpath(SAMPLE, ROOT),
                         ''.join(list(diff)[:60])))

    def test_every_option_has_help(self):
        bad = []
        for group, group_opts in opts.list_opts():
            group = group if isinstance(group, str) else group.name
            for opt in group_opts:
                text = (opt.help or '').strip()
                if not text or not text[0].isupper():
                    bad.append('[%s] %s: %r' % (group, opt.name, opt.help))
        self.assertEqual([], bad, 'options need help text that starts '
                         'with a capital letter')
