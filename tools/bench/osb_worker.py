#!/usr/bin/env python3
"""Run one osbackup operation in its own process and report it as JSON.

run.py starts this once per timed osbackup run, so that the peak RSS it
reports belongs to that operation alone. The clock covers the operation
only (not the interpreter start or the imports); ``rss_base_kb`` is the
resident size after the imports, before the work.

Operations (one JSON argument each, see run.py):

files-backup   archive.write_archive into streams.HashingWriter over a
               LocalStorage writer, committed: FileSetDriver.backup's path
files-restore  HashingReader over the stored artifact, extract_archive into
               staging directories, sha256 compared: what a restore's
               prepare phase does
db-backup      MySQLDriver(conf).backup(ctx) of [mysql] databases
db-restore     MySQLDriver(conf).load(ctx, ...) of each artifact in turn
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


def files_backup(conf, params, storage):
    """Exactly FileSetDriver.backup, over every path of the tree."""
    ctx = _ctx(storage, 'tree', params.get('backup_id', '1'))
    writer = storage.open_writer(ctx.key('tree', '.tar.zst'))
    with writer:
        sink = streams.HashingWriter(writer)
        stats = archive.write_archive(
            sink, params['root'], params['paths'], [],
            level=conf.storage.compression_level,
            threads=conf.storage.compression_threads,
            progress=ctx.progress)
        location = writer.commit()
    return {'location': location, 'size': sink.size, 'sha256': sink.sha256,
            'files': stats.files, 'bytes': stats.bytes,
            'warnings': len(stats.warnings)}


def files_restore(conf, params, storage):
    """As RestoreWorker._stage: extract while hashing, then compare."""
    targets = {path.lstrip('/'): os.path.join(
        params['staging'], path.strip('/').replace('/', '_'))
        for path in params['paths']}
    os.makedirs(params['staging'], exist_ok=True)
    with contextlib.closing(storage.open_reader(params['location'])) as raw:
        reader = streams.HashingReader(raw)
        try:
            manifest = archive.extract_archive(reader, targets)
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
    driver = mysql_driver.MySQLDriver(conf)
    ctx = _ctx(storage, 'mysql')
    for art in params['artifacts']:
        driver.load(ctx, art['location'], art['name'], art['sha256'])
    return {'loaded': len(params['artifacts'])}


OPERATIONS = {'files-backup': files_backup, 'files-restore': files_restore,
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
