"""Catalogue queries for monitoring: how fresh each service's backup is.

A mixin of ``Catalogue``. ``backup_status`` answers, per (host, service),
when it was last backed up, how the last attempt ended, what it stores and
when it was last proven; ``backup check`` and the conductor's metrics read
it. A handful of grouped queries, whatever the number of hosts: never a
query per series.
"""

import sqlalchemy as sa

from osbackup.db import models
from osbackup import states

#: Fields of one backup_status row.
STATUS_FIELDS = ('host', 'service', 'last_success', 'last_attempt',
                 'last_result', 'last_duration', 'stored_bytes',
                 'chain_length', 'last_verify', 'last_verify_result',
                 'installed')

_FAILED = (states.FAILED, states.TIMED_OUT)


def _filtered(query, cols, hosts, services):
    if hosts:
        query = query.where(cols.host.in_(hosts))
    if services:
        query = query.where(cols.service.in_(services))
    return query


class StatusQueries:
    """Freshness of every (host, service): for checks and metrics."""

    def backup_status(self, hosts=None, services=None,
                      agent_services: dict | None = None) -> list[dict]:
        """One row per (host, service) that was ever backed up.

        ``agent_services`` ({host: [service, ...]}, from the agents'
        heartbeats) adds the services an agent found that were never
        backed up at all: those are the stalest of all. Times are the
        catalogue's naive UTC datetimes.
        """
        found = {}
        with self.session() as s:
            self._task_status(s, found, hosts, services)
            self._stored(s, found, hosts, services)
            self._chains(s, found, hosts, services)
            self._verified(s, found, hosts, services)
        for host, present in (agent_services or {}).items():
            if hosts and host not in hosts:
                continue
            for service in present:
                if services and service not in services:
                    continue
                _slot(found, host, service)['installed'] = True
        return [found[key] for key in sorted(found)]

    def task_counts(self) -> list[tuple[str, str, int]]:
        """(kind, status, count) of every task in the catalogue."""
        t = models.Task
        with self.session() as s:
            return [(k, st, int(n)) for k, st, n in s.execute(
                sa.select(t.kind, t.status, sa.func.count())
                .group_by(t.kind, t.status))]

    def restore_counts(self) -> list[tuple[str, int]]:
        """(status, count) of the restores in the catalogue."""
        r = models.Restore
        with self.session() as s:
            return [(st, int(n)) for st, n in s.execute(
                sa.select(r.status, sa.func.count()).group_by(r.status))]

    @staticmethod
    def _task_status(s, found, hosts, services):
        t = models.Task
        ok = sa.case((t.status == states.SUCCEEDED, t.finished_at))
        bad = sa.case((t.status.in_(_FAILED), t.finished_at))
        active = sa.case((t.status.in_(states.TASK_ACTIVE), t.created_at))
        query = _filtered(
            sa.select(t.host, t.service, sa.func.max(ok), sa.func.max(bad),
                      sa.func.max(active))
            .where(t.kind == 'backup', t.status != states.SKIPPED)
            .group_by(t.host, t.service), t, hosts, services)
        for host, service, last_ok, last_bad, running in s.execute(query):
            row = _slot(found, host, service)
            row['last_success'] = last_ok
            ends = [x for x in (last_ok, last_bad) if x]
            row['last_attempt'] = max(ends + ([running] if running else []))
            if running and running >= max(ends, default=running):
                row['last_result'] = states.RUNNING
            elif last_bad and (not last_ok or last_bad > last_ok):
                row['last_result'] = states.FAILED
            elif last_ok:
                row['last_result'] = states.SUCCEEDED
        # The duration of each pair's newest success: a window over the
        # successes (one sort), not a join back on a derived table, which
        # MariaDB runs in time quadratic in the fleet.
        newest = sa.func.row_number().over(
            partition_by=(t.host, t.service),
            order_by=t.finished_at.desc()).label('rn')
        ranked = _filtered(
            sa.select(t.host, t.service, t.started_at, t.finished_at, newest)
            .where(t.kind == 'backup', t.status == states.SUCCEEDED),
            t, hosts, services).subquery()
        query = sa.select(ranked.c.host, ranked.c.service,
                          ranked.c.started_at, ranked.c.finished_at) \
            .where(ranked.c.rn == 1)
        for host, service, started, finished in s.execute(query):
            if started and finished:
                _slot(found, host, service)['last_duration'] = max(
                    0.0, (finished - started).total_seconds())

    @staticmethod
    def _stored(s, found, hosts, services):
        a = models.Artifact
        query = _filtered(
            sa.select(a.host, a.service, sa.func.sum(a.size))
            .where(a.status == states.AVAILABLE)
            .group_by(a.host, a.service), a, hosts, services)
        for host, service, size in s.execute(query):
            _slot(found, host, service)['stored_bytes'] = int(size or 0)

    @staticmethod
    def _chains(s, found, hosts, services):
        """Artifacts since the newest full one, per stored name."""
        a = models.Artifact
        # Each artifact beside the id of its name's newest full one, by a
        # window (one sort) rather than a join on a derived table.
        full_id = sa.func.max(sa.case((a.parent_id.is_(None), a.id))).over(
            partition_by=(a.host, a.service, a.name)).label('full_id')
        ranked = _filtered(
            sa.select(a.host, a.service, a.name, a.id, full_id)
            .where(a.status == states.AVAILABLE), a, hosts, services
        ).subquery()
        query = sa.select(ranked.c.host, ranked.c.service, ranked.c.name,
                          sa.func.count()) \
            .where(ranked.c.id >= ranked.c.full_id) \
            .group_by(ranked.c.host, ranked.c.service, ranked.c.name)
        for host, service, _name, count in s.execute(query):
            row = _slot(found, host, service)
            row['chain_length'] = max(row['chain_length'] or 0, int(count))

    @staticmethod
    def _verified(s, found, hosts, services):
        a, v = models.Artifact, models.Verification
        ok = sa.case((v.status == 'OK', v.finished_at))
        query = _filtered(
            sa.select(a.host, a.service, sa.func.max(v.finished_at),
                      sa.func.max(ok))
            .join(v, v.backup_id == a.backup_id)
            .where(v.finished_at.is_not(None))
            .group_by(a.host, a.service), a, hosts, services)
        for host, service, last, last_ok in s.execute(query):
            row = _slot(found, host, service)
            row['last_verify'] = last
            row['last_verify_result'] = 'OK' if last_ok and \
                last_ok >= last else 'CORRUPT'


def _slot(found: dict, host: str, service: str) -> dict:
    key = (host, service)
    if key not in found:
        found[key] = dict.fromkeys(STATUS_FIELDS)
        found[key].update(host=host, service=service, installed=False)
    return found[key]
