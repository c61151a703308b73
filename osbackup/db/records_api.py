"""Catalogue queries for storage records: chains by uuid and imports.

A mixin of ``Catalogue``. An import is one transaction per backup, keyed
by the backup's uuid: a rebuild interrupted half-way leaves whole backups
or none, and running it again skips what is there. It never updates a row.
"""

import datetime
import uuid as uuid_mod

import sqlalchemy as sa

from osbackup.db import models
from osbackup.db import rows
from osbackup import states

IMPORTED = 'imported'
EXISTING = 'existing'


def _time(value):
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).rstrip('Z'))


def artifact_key(backup_uuid, host, service, name) -> tuple:
    """What a record names an artifact by (its base, for instance)."""
    return (backup_uuid, host, service, name)


class RecordQueries:
    """What storage records are written from, and imported into."""

    def artifact_refs(self, artifact_ids: list) -> dict:
        """{artifact id: {backup_uuid, backup_id, host, service, name}}."""
        if not artifact_ids:
            return {}
        a, b = models.Artifact, models.Backup
        with self.session() as s:
            found = s.execute(
                sa.select(a.id, b.uuid, b.id, a.host, a.service, a.name)
                .join(b, b.id == a.backup_id)
                .where(a.id.in_(set(artifact_ids)))).all()
        return {r[0]: {'backup_uuid': r[1], 'backup_id': r[2], 'host': r[3],
                       'service': r[4], 'name': r[5]} for r in found}

    def backup_uuids(self) -> set:
        with self.session() as s:
            return set(s.scalars(sa.select(models.Backup.uuid)))

    def _artifact_ids(self, s, backup_uuids) -> dict:
        """{artifact_key: artifact id} of the backups ``backup_uuids``."""
        a, b = models.Artifact, models.Backup
        found = s.execute(
            sa.select(b.uuid, a.host, a.service, a.name, a.id)
            .join(b, b.id == a.backup_id)
            .where(b.uuid.in_(set(backup_uuids)))).all() \
            if backup_uuids else []
        return {artifact_key(*r[:4]): r[4] for r in found}

    def import_backup(self, record: dict) -> tuple[str, int]:
        """Add the backup of a record; (IMPORTED or EXISTING, its id).

        The recorded id is kept when it is free, so incremental archives,
        which name their base by its backup id, still find it; otherwise
        the backup gets a new id and its artifacts remember the old one
        (meta ``backup_ref``). Either way the id sequence continues past
        every id in the catalogue.
        """
        with self.session() as s:
            have = s.scalar(sa.select(models.Backup.id).where(
                models.Backup.uuid == record['uuid']))
            if have is not None:
                return EXISTING, have
            taken = s.get(models.Backup, record['id']) is not None
            backup = models.Backup(
                uuid=record['uuid'], status=record['status'],
                hosts=record['hosts'], services=record['services'],
                policy=record['policy'], targets=record['targets'],
                created_at=_time(record['created_at']),
                finished_at=_time(record['finished_at']),
                error=record['error'])
            if not taken:
                backup.id = record['id']
            s.add(backup)
            s.flush()
            bases = self._artifact_ids(s, {
                a['parent']['backup_uuid'] for a in record['artifacts']
                if a.get('parent')})
            tasks = {}
            for art in record['artifacts']:
                created = _time(art['created_at']) or backup.created_at
                key = (art['host'], art['service'])
                if key not in tasks:
                    skipped = art['status'] == states.ARTIFACT_SKIPPED
                    task = models.Task(
                        id=str(uuid_mod.uuid4()), backup_id=backup.id,
                        kind='backup', host=art['host'],
                        service=art['service'],
                        params={'imported_from': record['target']},
                        status=states.SKIPPED if skipped else
                        states.SUCCEEDED,
                        created_at=backup.created_at, updated_at=created,
                        started_at=backup.created_at, finished_at=created,
                        expires_at=created, result={})
                    s.add(task)
                    # No ORM relationship orders the inserts: the
                    # artifacts' foreign key needs the task first.
                    s.flush()
                    tasks[key] = task
                meta = dict(art['meta'] or {})
                if taken:
                    meta.setdefault('backup_ref', str(record['id']))
                parent = art.get('parent')
                row = models.Artifact(
                    backup_id=backup.id, task_id=tasks[key].id,
                    host=art['host'], service=art['service'],
                    name=art['name'], kind=art['kind'],
                    status=art['status'],
                    location=(art['copies'][0]['location']
                              if art['copies'] else art['location']),
                    size=art['size'], sha256=art['sha256'], meta=meta,
                    created_at=created,
                    parent_id=bases.get(artifact_key(
                        parent['backup_uuid'], parent['host'],
                        parent['service'], parent['name']))
                    if parent else None)
                s.add(row)
                s.flush()
                for copy in art['copies'] if art['location'] else []:
                    s.add(models.ArtifactCopy(
                        artifact_id=row.id, target=copy['target'],
                        location=copy['location'], size=copy.get('size'),
                        sha256=copy.get('sha256'),
                        status=copy.get('status', states.AVAILABLE),
                        created_at=created))
            return IMPORTED, backup.id

    def mark_missing(self, artifact_ids: list) -> int:
        """Mark available artifacts whose objects vanished; return count."""
        if not artifact_ids:
            return 0
        with self.session() as s:
            return s.execute(
                sa.update(models.Artifact)
                .where(models.Artifact.id.in_(artifact_ids),
                       models.Artifact.status == states.AVAILABLE)
                .values(status=states.MISSING)).rowcount

    def available_artifacts(self) -> list[dict]:
        """Every available artifact with its copies (storage sync)."""
        with self.session() as s:
            arts = s.scalars(sa.select(models.Artifact).where(
                models.Artifact.status == states.AVAILABLE)).all()
            copies = self._copies(s, [a.id for a in arts])
            out = []
            for a in arts:
                art = rows.row(a, 'id', 'backup_id', 'host', 'service',
                               'name', 'location', 'size')
                art['copies'] = copies.get(a.id, [])
                out.append(art)
            return out
