#!/usr/bin/env python3
"""Create an OpenStack-like MariaDB data set for benchmarks.

Six databases shaped like nova, nova_api, keystone, glance, cinder and
neutron (21 tables, with varchar, text, blob, int and datetime columns and
the uuid indexes the real schemas have), filled with deterministic rows by
multi-row INSERTs over PyMySQL in two worker processes. Database names get
a prefix (``bench_`` by default) so ``--drop`` (or ``drop()``) removes
exactly what was made.

Quick default: about 100 MB of row data. The size of issue 7 (2.5 GB)::

    gen_db.py --size-mb 2500
    gen_db.py --drop
"""

import argparse
import datetime
import json
import multiprocessing
import os
import random
import sys
import time

import pymysql

SOCKET = os.environ.get('OSBACKUP_BENCH_MYSQL_SOCKET',
                        '/run/mysqld/mysqld.sock')
USER = os.environ.get('OSBACKUP_BENCH_MYSQL_USER', 'root')
PASSWORD = os.environ.get('OSBACKUP_BENCH_MYSQL_PASSWORD', '')
PREFIX = 'bench_'
BATCH = 2000
EPOCH = datetime.datetime(2023, 1, 1)

WORDS = (
    'instance server volume image network port subnet router flavor host '
    'compute scheduler conductor api token project domain user role active '
    'error building deleted shutoff available in-use attaching detaching '
    'creating raw qcow2 bare public private shared ovs linuxbridge vxlan '
    'vlan flat gre dhcp compute:nova network:router_interface kvm qemu '
    'libvirt iscsi rbd lvm ceph nfs cinder glance nova neutron keystone'
).split()

# db -> [(table, weight of the data set, [(column, kind, parameter)])]
# kinds: uuid, str (words), int (max), dt, text (bytes), json (bytes),
# blob (bytes), hash. Every table also gets an auto-increment ``id``.
_COMMON = [('created_at', 'dt', 0), ('updated_at', 'dt', 0),
           ('deleted_at', 'dt', 0), ('deleted', 'int', 1)]
SCHEMA = {
    'nova': [
        ('instances', 0.16, [
            ('uuid', 'uuid', 0), ('project_id', 'uuid', 0),
            ('user_id', 'uuid', 0), ('hostname', 'str', 2),
            ('host', 'str', 1), ('node', 'str', 1),
            ('vm_state', 'str', 1), ('task_state', 'str', 1),
            ('power_state', 'int', 7), ('memory_mb', 'int', 65536),
            ('vcpus', 'int', 64), ('root_gb', 'int', 500),
            ('image_ref', 'uuid', 0), ('display_name', 'str', 3),
            ('display_description', 'text', 300),
            ('launched_at', 'dt', 0), ('availability_zone', 'str', 1),
        ] + _COMMON),
        ('instance_system_metadata', 0.10, [
            ('instance_uuid', 'uuid', 0), ('key', 'str', 2),
            ('value', 'str', 4)] + _COMMON),
        ('instance_faults', 0.08, [
            ('instance_uuid', 'uuid', 0), ('code', 'int', 600),
            ('message', 'str', 8), ('details', 'text', 1500),
            ('host', 'str', 1)] + _COMMON),
        ('instance_actions_events', 0.10, [
            ('action_id', 'int', 1000000), ('event', 'str', 3),
            ('result', 'str', 1), ('traceback', 'text', 120),
            ('start_time', 'dt', 0), ('finish_time', 'dt', 0),
            ('host', 'str', 1)] + _COMMON),
        ('block_device_mapping', 0.06, [
            ('instance_uuid', 'uuid', 0), ('device_name', 'str', 1),
            ('volume_id', 'uuid', 0), ('volume_size', 'int', 1000),
            ('connection_info', 'json', 600), ('boot_index', 'int', 4)]
            + _COMMON),
        ('instance_extra', 0.10, [
            ('instance_uuid', 'uuid', 0), ('numa_topology', 'json', 500),
            ('pci_requests', 'json', 100), ('flavor', 'json', 900),
            ('migration_context', 'blob', 200)] + _COMMON),
    ],
    'nova_api': [
        ('request_specs', 0.06, [
            ('instance_uuid', 'uuid', 0), ('spec', 'json', 2000)]
            + _COMMON),
        ('instance_mappings', 0.03, [
            ('instance_uuid', 'uuid', 0), ('cell_id', 'int', 3),
            ('project_id', 'uuid', 0), ('user_id', 'uuid', 0),
            ('queued_for_delete', 'int', 1)] + _COMMON),
        ('build_requests', 0.02, [
            ('instance_uuid', 'uuid', 0), ('project_id', 'uuid', 0),
            ('instance', 'json', 1500), ('block_device_mappings', 'json',
                                         300)] + _COMMON),
    ],
    'keystone': [
        ('user', 0.01, [
            ('uuid', 'uuid', 0), ('domain_id', 'uuid', 0),
            ('enabled', 'int', 1), ('extra', 'json', 100),
            ('password_hash', 'hash', 0)] + _COMMON),
        ('project', 0.01, [
            ('uuid', 'uuid', 0), ('name', 'str', 2),
            ('description', 'text', 100), ('domain_id', 'uuid', 0),
            ('enabled', 'int', 1), ('extra', 'json', 80)] + _COMMON),
        ('credential', 0.02, [
            ('uuid', 'uuid', 0), ('user_id', 'uuid', 0),
            ('project_id', 'uuid', 0), ('type', 'str', 1),
            ('key_hash', 'hash', 0), ('encrypted_blob', 'blob', 300)]
            + _COMMON),
    ],
    'glance': [
        ('images', 0.04, [
            ('uuid', 'uuid', 0), ('name', 'str', 3),
            ('size', 'int', 1 << 30),
            ('status', 'str', 1), ('disk_format', 'str', 1),
            ('container_format', 'str', 1), ('checksum', 'hash', 0),
            ('owner', 'uuid', 0), ('min_disk', 'int', 100),
            ('visibility', 'str', 1)] + _COMMON),
        ('image_properties', 0.04, [
            ('image_id', 'uuid', 0), ('name', 'str', 2),
            ('value', 'text', 60)] + _COMMON),
        ('image_locations', 0.02, [
            ('image_id', 'uuid', 0), ('value', 'text', 120),
            ('meta_data', 'json', 100), ('status', 'str', 1)] + _COMMON),
    ],
    'cinder': [
        ('volumes', 0.05, [
            ('uuid', 'uuid', 0), ('project_id', 'uuid', 0),
            ('host', 'str', 2), ('size', 'int', 2000),
            ('status', 'str', 1), ('attach_status', 'str', 1),
            ('display_name', 'str', 3), ('display_description', 'text', 200),
            ('provider_location', 'text', 150),
            ('volume_type_id', 'uuid', 0)] + _COMMON),
        ('snapshots', 0.02, [
            ('uuid', 'uuid', 0), ('volume_id', 'uuid', 0),
            ('status', 'str', 1), ('progress', 'str', 1),
            ('volume_size', 'int', 2000), ('display_name', 'str', 3)]
            + _COMMON),
        ('volume_attachment', 0.03, [
            ('uuid', 'uuid', 0), ('volume_id', 'uuid', 0),
            ('instance_uuid', 'uuid', 0), ('attached_host', 'str', 1),
            ('mountpoint', 'str', 1), ('connection_info', 'json', 500),
            ('connector', 'json', 300)] + _COMMON),
    ],
    'neutron': [
        ('ports', 0.04, [
            ('uuid', 'uuid', 0), ('project_id', 'uuid', 0),
            ('name', 'str', 2), ('network_id', 'uuid', 0),
            ('mac_address', 'str', 1), ('device_id', 'uuid', 0),
            ('device_owner', 'str', 1), ('status', 'str', 1),
            ('binding_profile', 'json', 200)] + _COMMON),
        ('networks', 0.01, [
            ('uuid', 'uuid', 0), ('project_id', 'uuid', 0),
            ('name', 'str', 2), ('status', 'str', 1), ('mtu', 'int', 9000),
            ('description', 'text', 200)] + _COMMON),
        ('ipallocations', 0.03, [
            ('port_id', 'uuid', 0), ('ip_address', 'str', 1),
            ('subnet_id', 'uuid', 0), ('network_id', 'uuid', 0)]
            + _COMMON),
    ],
}
_TYPES = {'uuid': 'VARCHAR(36)', 'str': 'VARCHAR(255)', 'int': 'INT',
          'dt': 'DATETIME', 'hash': 'VARCHAR(128)', 'blob': 'BLOB'}


def databases(prefix=PREFIX):
    return [prefix + db for db in SCHEMA]


def connect(database=None, **kw):
    return pymysql.connect(unix_socket=SOCKET, user=USER, password=PASSWORD,
                           database=database, charset='utf8mb4', **kw)


def _ddl(table, columns):
    cols = ['`id` INT NOT NULL AUTO_INCREMENT']
    for name, kind, param in columns:
        if kind in ('text', 'json'):
            sql_type = 'MEDIUMTEXT' if param > 16000 else 'TEXT'
        else:
            sql_type = _TYPES[kind]
        cols.append('`%s` %s' % (name, sql_type))
    cols.append('PRIMARY KEY (`id`)')
    first_uuid = next((n for n, k, _ in columns if k == 'uuid'), None)
    if first_uuid:
        cols.append('KEY `ix_%s_%s` (`%s`)' % (table, first_uuid,
                                               first_uuid))
    return ('CREATE TABLE `%s` (%s) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4'
            % (table, ', '.join(cols)))


class _Rows:
    """Deterministic row values for one table."""

    def __init__(self, columns, seed):
        self.columns = columns
        self.rnd = random.Random(seed)
        rnd = self.rnd
        # Realistic repetition: a few thousand instances and projects.
        self.uuids = [self._uuid() for _ in range(3000)]
        self.text = ' '.join(rnd.choice(WORDS) for _ in range(200000))

    def _uuid(self):
        h = '%032x' % self.rnd.getrandbits(128)
        return '%s-%s-%s-%s-%s' % (h[:8], h[8:12], h[12:16], h[16:20],
                                   h[20:])

    def _words(self, nbytes):
        start = self.rnd.randrange(len(self.text) - nbytes - 1)
        return self.text[start:start + self.rnd.randint(nbytes // 2,
                                                        nbytes * 3 // 2)]

    def _json(self, nbytes):
        rnd, out, size = self.rnd, {}, 2
        while size < nbytes:
            key = rnd.choice(WORDS)
            value = (rnd.randint(0, 100000) if rnd.random() < 0.3 else
                     rnd.choice(self.uuids) if rnd.random() < 0.4 else
                     self._words(30))
            out[key + str(len(out))] = value
            size += len(key) + len(str(value)) + 8
        return json.dumps(out)

    def row(self):
        rnd, values = self.rnd, []
        for _name, kind, param in self.columns:
            if kind == 'uuid':
                values.append(rnd.choice(self.uuids) if rnd.random() < 0.5
                              else self._uuid())
            elif kind == 'str':
                values.append(' '.join(rnd.choice(WORDS)
                                       for _ in range(param)))
            elif kind == 'int':
                values.append(rnd.randint(0, param))
            elif kind == 'dt':
                values.append(EPOCH + datetime.timedelta(
                    seconds=rnd.randrange(86400 * 700)))
            elif kind == 'text':
                values.append(self._words(param))
            elif kind == 'json':
                values.append(self._json(param))
            elif kind == 'blob':
                values.append(rnd.randbytes(rnd.randint(param // 2, param)))
            elif kind == 'hash':
                values.append('%064x' % rnd.getrandbits(256))
        return tuple(values)


def _row_size(row):
    return sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in row)


def _fill(job):
    """Worker: create one table and insert its rows; return (rows, bytes)."""
    database, table, columns, nbytes, seed = job
    conn = connect(database, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute('SET SESSION unique_checks=0, foreign_key_checks=0')
            cur.execute(_ddl(table, columns))
            sql = 'INSERT INTO `%s` (%s) VALUES (%s)' % (
                table, ', '.join('`%s`' % c[0] for c in columns),
                ', '.join(['%s'] * len(columns)))
            gen = _Rows(columns, seed)
            rows = done = 0
            while done < nbytes:
                batch = []
                while len(batch) < BATCH and done < nbytes:
                    row = gen.row()
                    batch.append(row)
                    done += _row_size(row)
                cur.executemany(sql, batch)
                conn.commit()
                rows += len(batch)
        return rows, done
    finally:
        conn.close()


def drop(prefix=PREFIX):
    """Drop every database the generator made (and nothing else)."""
    conn = connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            for db in databases(prefix):
                cur.execute('DROP DATABASE IF EXISTS `%s`' % db)
    finally:
        conn.close()


def generate(size_mb=100, prefix=PREFIX, seed=11, workers=2):
    """Create the six databases with ``size_mb`` MB of rows in total."""
    drop(prefix)
    conn = connect(autocommit=True)
    try:
        with conn.cursor() as cur:
            for db in databases(prefix):
                cur.execute('CREATE DATABASE `%s`' % db)
    finally:
        conn.close()
    jobs = []
    total = sum(w for tables in SCHEMA.values() for _t, w, _c in tables)
    for db, tables in SCHEMA.items():
        for table, weight, columns in tables:
            jobs.append((prefix + db, table, columns,
                         int(size_mb * (1 << 20) * weight / total),
                         seed * 1000 + len(jobs)))
    jobs.sort(key=lambda j: -j[3])
    started = time.monotonic()
    ctx = multiprocessing.get_context('fork')
    with ctx.Pool(workers) as pool:
        results = pool.map(_fill, jobs, chunksize=1)
    return {'databases': databases(prefix), 'tables': len(jobs),
            'rows': sum(r for r, _ in results),
            'bytes': sum(b for _, b in results),
            'seconds': round(time.monotonic() - started, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mb', type=int, default=100,
                        help='MB of row data (default 100; issue 7: 2500)')
    parser.add_argument('--prefix', default=PREFIX)
    parser.add_argument('--seed', type=int, default=11)
    parser.add_argument('--drop', action='store_true',
                        help='only drop the databases and exit')
    args = parser.parse_args(argv)
    if args.drop:
        drop(args.prefix)
        return
    json.dump(generate(args.size_mb, args.prefix, args.seed), sys.stdout)
    print()


if __name__ == '__main__':
    main()
