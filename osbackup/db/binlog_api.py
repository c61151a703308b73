"""Catalogue queries for archived binary logs (a mixin of ``Catalogue``)."""

import sqlalchemy as sa

from osbackup import artifact_kinds
from osbackup.db import models
from osbackup.db import rows
from osbackup.definitions import binlog as binlog_definition
from osbackup.definitions import mysql as mysql_definition
from osbackup import states


class BinlogQueries:
    """Segments of kind ``binlog`` and the archive tasks that ship them."""

    def binlog_segments(self, host: str | None = None) -> list[dict]:
        """Available segments, per host in the order they were archived."""
        with self.session() as s:
            query = sa.select(models.Artifact).where(
                models.Artifact.kind == artifact_kinds.BINLOG,
                models.Artifact.status == states.AVAILABLE)
            if host:
                query = query.where(models.Artifact.host == host)
            arts = s.scalars(query.order_by(models.Artifact.host,
                                            models.Artifact.id)).all()
            return [rows.row(a, 'id', 'backup_id', 'task_id', 'host',
                             'service', 'name', 'location', 'size', 'sha256',
                             'meta', 'created_at') for a in arts]

    def binlog_position(self, host: str) -> dict | None:
        """Where the host's archive continues: the last segment's end."""
        with self.session() as s:
            art = s.scalars(sa.select(models.Artifact).where(
                models.Artifact.kind == artifact_kinds.BINLOG,
                models.Artifact.host == host,
                models.Artifact.status == states.AVAILABLE).order_by(
                    models.Artifact.id.desc()).limit(1)).first()
            if art is None:
                return None
            return {'file': art.meta['file'],
                    'position': art.meta['end_pos']}

    def binlog_tasks(self) -> dict:
        """Per host: (newest archive task's creation, whether one runs)."""
        task = models.Task
        mine = (task.kind == 'backup',
                task.service == binlog_definition.NAME)
        with self.session() as s:
            newest = dict(s.execute(sa.select(
                task.host, sa.func.max(task.created_at)).where(
                    *mine).group_by(task.host)).all())
            active = set(s.scalars(sa.select(task.host).where(
                *mine, task.status.in_(states.TASK_ACTIVE))).all())
        return {host: (created, host in active)
                for host, created in newest.items()}

    def pitr_bases(self) -> list[dict]:
        """Logical backups with a recorded binlog position, newest first.

        One entry per (backup, host): its finish time, the position (file,
        position, GTID) and the databases it holds.
        """
        art, backup = models.Artifact, models.Backup
        with self.session() as s:
            found = s.execute(sa.select(
                backup.id, backup.finished_at, art.host, art.name,
                art.meta).join(art, art.backup_id == backup.id).where(
                    backup.status == states.SUCCEEDED,
                    backup.finished_at.is_not(None),
                    art.kind == artifact_kinds.SQL,
                    art.service == mysql_definition.NAME,
                    art.status == states.AVAILABLE)).all()
        out = {}
        for backup_id, finished, host, name, meta in found:
            if not (meta or {}).get('binlog'):
                continue
            entry = out.setdefault((backup_id, host), {
                'backup_id': backup_id, 'host': host,
                'finished_at': rows.iso(finished),
                'binlog': meta['binlog'], 'databases': []})
            entry['databases'].append(name)
        return sorted(out.values(), key=lambda b: (b['finished_at'],
                                                   b['backup_id']),
                      reverse=True)

    def binlog_newest(self) -> dict:
        """Per host, the meta of its newest available segment."""
        art = models.Artifact
        mine = (art.kind == artifact_kinds.BINLOG,
                art.status == states.AVAILABLE)
        with self.session() as s:
            newest = sa.select(sa.func.max(art.id)).where(*mine).group_by(
                art.host)
            return {host: meta for host, meta in s.execute(
                sa.select(art.host, art.meta).where(art.id.in_(newest)))}
