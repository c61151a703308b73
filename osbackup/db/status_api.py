"""Catalogue queries for monitoring: how fresh each service's backup is.

A mixin of ``Catalogue``. ``backup_status`` answers, per (host, service),
when it was last backed up, how the last attempt ended, what it stores and
when it was last proven; ``backup check`` and the conductor's metrics read
it. Three grouped queries, whatever the number of hosts, each reading
its table in the order of an index made for it: never a query per series,
never a sort of the whole history.
"""

import sqlalchemy as sa
from sqlalchemy import orm

from osbackup import artifact_kinds
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
            self._verified(s, found, hosts, services)
        for host, present in (agent_services or {}).items():
            if hosts and host not in hosts:
                continue
            for service in present:
                if services and service not in services:
                    continue
                _slot(found, host, service)['installed'] = True
        return [found[key] for key in sorted(found)]

    def missing_secrets(self, hosts=None, services=None) -> dict:
        """{(host, service): secrets the newest file set lacks}.

        From the ``secrets_missing`` the agent recorded in the newest
        available file-set artifact of each pair (see drivers/fileset.py);
        pairs that lack none are left out.
        """
        a = models.Artifact
        newest = _filtered(
            sa.select(sa.func.max(a.id).label('id'))
            .where(a.status == states.AVAILABLE,
                   a.kind == artifact_kinds.FILES)
            .group_by(a.host, a.service), a, hosts, services).subquery()
        out = {}
        with self.session() as s:
            for host, service, meta in s.execute(
                    sa.select(a.host, a.service, a.meta)
                    .join(newest, newest.c.id == a.id)):
                missing = (meta or {}).get('secrets_missing')
                if missing:
                    out[(host, service)] = missing
        return out

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
        """Last success, failure and start of each pair, and its duration.

        One grouped pass over the backup tasks (in the order of the index
        ix_tasks_freshness, no sort), joined back on that index to the
        newest success for its start time: one lookup per pair.
        """
        t = models.Task
        ok = sa.case((t.status == states.SUCCEEDED, t.finished_at))
        bad = sa.case((t.status.in_(_FAILED), t.finished_at))
        active = sa.case((t.status.in_(states.TASK_ACTIVE), t.created_at))
        pairs = _filtered(
            sa.select(t.host, t.service, sa.func.max(ok).label('last_ok'),
                      sa.func.max(bad).label('last_bad'),
                      sa.func.max(active).label('running'))
            .where(t.kind == 'backup', t.status != states.SKIPPED)
            .group_by(t.host, t.service), t, hosts, services).subquery()
        newest = orm.aliased(t)
        query = sa.select(pairs, newest.started_at).outerjoin(
            newest, sa.and_(newest.kind == 'backup',
                            newest.host == pairs.c.host,
                            newest.service == pairs.c.service,
                            newest.status == states.SUCCEEDED,
                            newest.finished_at == pairs.c.last_ok))
        for host, service, last_ok, last_bad, running, started in \
                s.execute(query):
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
            if started and last_ok:
                # Two successes ending in the same second: the longest.
                row['last_duration'] = max(
                    row['last_duration'] or 0.0,
                    (last_ok - started).total_seconds())

    @staticmethod
    def _stored(s, found, hosts, services):
        """Bytes stored and incremental chain length of each pair.

        The chain of a stored name is its artifacts since its newest full
        one. One grouped pass per name (in the order of the index
        ix_artifacts_chains, no sort); the chain is then counted on that
        index, a few entries per name. Grouping again over a join of the
        two sorts the whole history on MariaDB instead.
        """
        a = models.Artifact
        names = _filtered(
            sa.select(a.host, a.service, a.name,
                      sa.func.sum(a.size).label('size'),
                      sa.func.max(sa.case((a.parent_id.is_(None), a.id)))
                      .label('full_id'))
            .where(a.status == states.AVAILABLE)
            .group_by(a.host, a.service, a.name), a, hosts, services
        ).subquery()
        chain = orm.aliased(a)
        length = sa.select(sa.func.count()).where(
            chain.status == states.AVAILABLE, chain.host == names.c.host,
            chain.service == names.c.service, chain.name == names.c.name,
            chain.id >= names.c.full_id).scalar_subquery()
        query = sa.select(names.c.host, names.c.service, names.c.size,
                          length)
        for host, service, size, count in s.execute(query):
            row = _slot(found, host, service)
            row['stored_bytes'] = (row['stored_bytes'] or 0) + int(size or 0)
            if count:
                row['chain_length'] = max(row['chain_length'] or 0,
                                          int(count))

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
