"""Object storage: osbackup's swift and s3 backends against the clients'
own transfers, on one incompressible stream (what tar | zstd produces), in
one run, against the private Swift all-in-one of the functional tests
(tempauth + s3api on loopback).

References: ``swift upload --use-slo`` of the file and of the same bytes
on stdin (a stream, as osbackup uploads) / ``swift download`` with the same
segment size, and boto3's ``upload_fileobj`` / ``download_fileobj`` with
their default TransferConfig (8 MiB parts, 10 threads), from the file and
from a pipe. osbackup runs with
its default options unless --concurrency is given.

    python tools/bench/object_storage.py --size-mib 512
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time

from boto3.s3 import transfer

import osbackup.conf
from osbackup.storage import s3
from osbackup.storage import swift
from osbackup.tests.functional import swift_cluster

MiB = 1 << 20
# python-swiftclient's own CLI, installed beside this interpreter.
SWIFT_CLI = os.path.join(os.path.dirname(sys.executable), 'swift')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mib', type=int, default=512)
    parser.add_argument('--rounds', type=int, default=3,
                        help='runs of each transfer; medians are shown')
    parser.add_argument('--concurrency', type=int,
                        help='segment/upload concurrency of osbackup')
    args = parser.parse_args()
    size = args.size_mib * MiB
    conf = osbackup.conf.CONF
    conf([], project='osbackup')
    data = '/var/tmp/osbackup-bench-objstore.bin'
    with open(data, 'wb') as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    cluster = swift_cluster.SwiftCluster()
    cluster.setUp()
    try:
        run(conf, cluster, data, size, args.concurrency, args.rounds)
    finally:
        cluster.cleanUp()
        os.unlink(data)


def run(conf, cluster, data, size, concurrency, rounds):
    swift_opts = dict(cluster.swift_flags(), container='bench')
    s3_opts = dict(cluster.s3_flags(), bucket='bench-s3')
    if concurrency:
        swift_opts['segment_concurrency'] = concurrency
        s3_opts['upload_concurrency'] = concurrency
    for group, opts in (('swift_storage', swift_opts),
                        ('s3_storage', s3_opts)):
        for key, value in opts.items():
            conf.set_override(key, value, group=group)
    sw, bs = swift.SwiftStorage(conf), s3.S3Storage(conf)
    locations = {}

    def put(storage):
        with storage.open_writer('bench/obj') as writer, \
                open(data, 'rb') as f:
            for chunk in iter(lambda: f.read(MiB), b''):
                writer.write(chunk)
            locations[storage.name] = writer.commit()

    def get(storage):
        with contextlib.closing(storage.open_reader(
                locations[storage.name])) as reader:
            while reader.read(MiB):
                pass

    cli = [SWIFT_CLI, '-A', cluster.auth_url, '-U', 'test:tester',
           '-K', 'testing']
    subprocess.run(cli + ['post', 'bench-cli'], check=True)
    segment = str(conf.swift_storage.segment_size)
    client = bs.client()
    bs._ensure_ready()
    pairs = [
        ('swift upload, file', lambda: put(sw), lambda: subprocess.run(
            cli + ['upload', '--use-slo', '-S', segment, '--object-name',
                   'obj', 'bench-cli', data], check=True,
            capture_output=True)),
        # What osbackup uploads is a stream (tar | zstd): the clients'
        # own stream uploads are the like-for-like reference.
        ('swift upload, stream', lambda: put(sw), lambda: _piped(
            data, cli + ['upload', '--use-slo', '-S', segment,
                         '--object-name', 'obj-stream', 'bench-cli', '-'])),
        ('swift download', lambda: get(sw), lambda: subprocess.run(
            cli + ['download', 'bench-cli', 'obj', '-o', '/dev/null'],
            check=True, capture_output=True)),
        ('s3 upload, file', lambda: put(bs), lambda: _boto_put(client, data)),
        ('s3 upload, stream', lambda: put(bs),
         lambda: _boto_put_stream(client, data)),
        ('s3 download', lambda: get(bs), lambda: _boto_get(client)),
    ]
    times = {label: ([], []) for label, _, _ in pairs}
    load = os.getloadavg()[0]
    # Rounds alternate reference and osbackup so drift hits both alike.
    for _ in range(rounds):
        for label, ours, reference in pairs:
            times[label][0].append(_timed(reference))
            times[label][1].append(_timed(ours))
    print('%d MiB, median of %d, load average %.1f to %.1f'
          % (size // MiB, rounds, load, os.getloadavg()[0]))
    print('%-22s %10s %10s %7s' % ('work', 'reference', 'osbackup',
                                   'ratio'))
    for label, (refs, ourss) in times.items():
        t_ref, t_ours = statistics.median(refs), statistics.median(ourss)
        print('%-22s %9.2fs %9.2fs %6.2fx' % (label, t_ref, t_ours,
                                              t_ours / t_ref))


def _boto_put(client, data):
    with open(data, 'rb') as f:
        client.upload_fileobj(f, 'bench-s3', 'boto-obj',
                              Config=transfer.TransferConfig())


def _boto_put_stream(client, data):
    with subprocess.Popen(['cat', data], stdout=subprocess.PIPE) as cat:
        client.upload_fileobj(cat.stdout, 'bench-s3', 'boto-obj-stream',
                              Config=transfer.TransferConfig())
    if cat.returncode:
        raise RuntimeError('cat exited %d' % cat.returncode)


def _piped(data, argv):
    with open(data, 'rb') as f:
        cat = subprocess.Popen(['cat'], stdin=f, stdout=subprocess.PIPE)
        subprocess.run(argv, stdin=cat.stdout, check=True,
                       capture_output=True)
        cat.stdout.close()
        if cat.wait():
            raise RuntimeError('cat exited %d' % cat.returncode)


def _boto_get(client):
    with open('/dev/null', 'wb') as f:
        client.download_fileobj('bench-s3', 'boto-obj', f,
                                Config=transfer.TransferConfig())


def _timed(fn):
    start = time.monotonic()
    fn()
    return time.monotonic() - start


if __name__ == '__main__':
    main()
