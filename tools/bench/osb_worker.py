#!/usr/bin/env python3
"""Run one osbackup operation in its own process and report it as JSON.

run.py starts this once per timed osbackup run, so that the peak RSS it
reports belongs to that operation alone. The clock covers the operation
only (not the interpreter start or the imports); ``rss_base_kb`` is the
resident size after the imports, before the work.

Operations (one JSON argument each, see run.py):

files-backup   FileSetDriver.backup over the tree's paths into a
               LocalStorage, full or (with ``base``) incremental against
               the manifest it kept after the previous run
files-restore  HashingReader over the stored artifact, extract_archive into
               staging directories, sha256 compared: what a restore's
               prepare phase does (``hash_files``: what verify --deep does)
db-backup      MySQLDriver(conf).backup(ctx) of [mysql] databases
db-restore     MySQLDriver(conf).verify of each artifact, then .load of each
               in turn (verified: read once more), as a restore does
physical-backup   MariaBackupDriver(conf).backup(ctx) of the [mysql] server
physical-restore  MariaBackupDriver(conf).restore(ctx, ...) into a datadir
"""

import contextlib
import json
import os
import resource
import sys
import time


from osbackup import archive
import osbackup.conf
from osbackup.drivers import base
from osbackup.drivers import fileset
from osbackup.drivers import mariabackup as mariabackup_driver
from osbackup.drivers import mysql as mysql_driver
from osbackup.storage import local
from osbackup import streams


def _rss_kb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def _conf(params):
    conf = osbackup.conf.CONF
    # No default config files: /etc/osbackup must not change the figures.
    conf([], project='osbackup', default_config_files=[])
    conf.set_override('compression_level', params.get('level', 3),
                      group='storage')
    conf.set_override('compression_threads', params.get('threads', 0),
                      group='storage')
    conf.set_override('state_path', params['storage'])
    conf.set_override('local_path', params['storage'], group='storage')
    for key in ('user', 'password', 'socket', 'host'):
        if params.get('mysql_' + key) is not None:
            conf.set_override(key, params['mysql_' + key], group='mysql')
    if params.get('databases'):
        conf.set_override('databases', params['databases'], group='mysql')
    return conf


def _ctx(storage, service, backup_id='1'):
    return base.TaskContext(task_id='bench', backup_id=backup_id,
                            host='bench', service=service, storage=storage)


class _TreeDriver(fileset.FileSetDriver):
    """The nova driver's code over the bench tree's paths."""

    name = 'nova'

    def __init__(self, conf, paths):
        super().__init__(conf)
        self._paths = paths

    def paths(self):
        return list(self._paths)

    def excludes(self):
        return []


def files_backup(conf, params, storage):
    """Exactly FileSetDriver.backup, over every path of the tree."""
    conf.set_override('root_path', params['root'], group='agent')
    ctx = _ctx(storage, 'nova', params.get('backup_id', '1'))
    if params.get('base'):
        ctx.params['base'] = params['base']
    (art,) = _TreeDriver(conf, params['paths']).backup(ctx)
    return {'location': art.location, 'size': art.size,
            'sha256': art.sha256, 'files': art.meta['files'],
            'bytes': art.meta['bytes'], 'level': art.meta['level'],
            'stored_files': art.meta['stored_files'],
            'stored_bytes': art.meta['stored_bytes'],
            'warnings': art.meta['warnings']}


def files_restore(conf, params, storage):
    """As RestoreWorker._stage: extract while hashing, then compare."""
    targets = {path.lstrip('/'): os.path.join(
        params['staging'], path.strip('/').replace('/', '_'))
        for path in params['paths']}
    os.makedirs(params['staging'], exist_ok=True)
    with contextlib.closing(storage.open_reader(params['location'])) as raw:
        reader = streams.HashingReader(raw)
        try:
            manifest = archive.extract_archive(
                reader, targets, hash_files=params.get('hash_files', False))
        finally:
            reader.drain()
    if reader.sha256 != params['sha256']:
        raise SystemExit('sha256 mismatch: %s != %s'
                         % (reader.sha256, params['sha256']))
    return {'entries': len(manifest['entries'])}


def db_backup(conf, params, storage):
    driver = mysql_driver.MySQLDriver(conf)
    ctx = _ctx(storage, 'mysql', params.get('backup_id', '1'))
    artifacts = driver.backup(ctx)
    return {'artifacts': [a.to_dict() for a in artifacts],
            'size': sum(a.size for a in artifacts),
            'warnings': ctx.warnings}


def db_restore(conf, params, storage):
    """What a restore does: verify (prepare phase), then load (load_db)."""
    if params.get('parallelism') is not None:
        conf.set_override('restore_parallelism', params['parallelism'],
                          group='mysql')
    driver = mysql_driver.MySQLDriver(conf)
    ctx = _ctx(storage, 'mysql')
    for art in params['artifacts']:
        driver.verify(ctx, art['location'], art['name'], art['sha256'])
    for art in params['artifacts']:
        driver.load(ctx, art['location'], art['name'], art['sha256'],
                    verified=True)
    return {'loaded': len(params['artifacts']),
            'parallelism': driver.restore_parallelism()}


def physical_backup(conf, params, storage):
    conf.set_override('enabled', True, group='mariabackup')
    driver = mariabackup_driver.MariaBackupDriver(conf)
    ctx = _ctx(storage, 'mariabackup', params.get('backup_id', '1'))
    (art,) = driver.backup(ctx)
    return {'artifact': art.to_dict(), 'size': art.size,
            'warnings': ctx.warnings}


def physical_restore(conf, params, storage):
    driver = mariabackup_driver.MariaBackupDriver(conf)
    ctx = _ctx(storage, 'mariabackup')
    art = params['artifact']
    return driver.restore(ctx, art['location'], art['sha256'],
                          datadir=params['datadir'])


OPERATIONS = {'files-backup': files_backup, 'files-restore': files_restore,
              'physical-backup': physical_backup,
              'physical-restore': physical_restore,
              'db-backup': db_backup, 'db-restore': db_restore}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    operation, params = argv[0], json.loads(argv[1])
    conf = _conf(params)
    storage = local.LocalStorage(conf, path=params['storage'])
    base_kb = _rss_kb()
    started = time.monotonic()
    cpu0 = os.times()
    result = OPERATIONS[operation](conf, params, storage)
    cpu1 = os.times()
    result.update(
        seconds=time.monotonic() - started,
        cpu_seconds=(cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        rss_base_kb=base_kb,
        maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    json.dump(result, sys.stdout)
    print()


if __name__ == '__main__':
    main()
