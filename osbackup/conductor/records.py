"""Keep the storage records in step with the catalogue (osbackup/records.py).

A backup's record is written on each of its targets once the backup has
ended, that is after every artifact is committed: a target without the
record holds nothing a rebuild imports. Deleting a backup removes its
records before its objects, so a half-deleted backup is never imported
as good.
"""

from oslo_log import log as logging

from osbackup import records
from osbackup import storage as storage_mod
from osbackup.storage import audit
from osbackup import version

LOG = logging.getLogger(__name__)


class RecordKeeper:
    """Writes and deletes the records of backups on their targets."""

    def __init__(self, conf, catalogue):
        self.conf = conf
        self.catalogue = catalogue
        self._sealer = None

    @property
    def sealer(self) -> records.Sealer:
        # Read when first needed: a key file this conductor cannot read
        # fails the record writes (logged), not the conductor's start.
        if self._sealer is None:
            self._sealer = records.Sealer.from_conf(self.conf)
        return self._sealer

    def _storage(self, target):
        return storage_mod.get_storage(self.conf, target)

    def backup_ended(self, backup_id: int) -> list[str]:
        """Write the record of an ended backup; return the locations."""
        backup = self.catalogue.get_backup(backup_id)
        if not any(a['location'] for a in backup['artifacts']):
            return []
        parents = self.catalogue.artifact_refs(
            [a['parent_id'] for a in backup['artifacts'] if a['parent_id']])
        out = []
        for target in backup['targets']:
            data = self.sealer.seal(records.build(
                backup, parents, target, version.version_string()))
            try:
                storage = self._storage(target)
                with storage.open_writer(records.key_of(
                        backup['uuid'])) as writer:
                    writer.write(data)
                    out.append(writer.commit())
            except Exception as exc:
                # The backup is good; only a rebuild from this target
                # will not find it.
                LOG.error('Backup %s: cannot write its record on target '
                          '%s: %s', backup_id, target, exc)
        return out

    def sync(self) -> int:
        """Mark missing the artifacts whose every copy vanished.

        A target that cannot be listed, or that holds none of this
        deployment's records (the conductor sees another disk than the
        agents), says nothing: its copies are left as they are.
        """
        artifacts = self.catalogue.available_artifacts()
        for art in artifacts:
            art['copies'] = audit.copies_of(self.conf, art)
        listed = {}
        for target in sorted({c['target'] for a in artifacts
                              for c in a['copies']}):
            try:
                objects = dict(records.stored(self._storage(target)))
            except Exception as exc:
                LOG.warning('Storage sync: cannot list target %s: %s',
                            target, exc)
                continue
            if not any(records.is_record(loc) for loc in objects):
                LOG.warning('Storage sync: target %s holds no backup '
                            'records here; not judging its artifacts',
                            target)
                continue
            listed[target] = objects
        gone = [a['id'] for a in artifacts if a['copies'] and all(
            c['target'] in listed and c['location'] not in listed[c['target']]
            for c in a['copies'])]
        marked = self.catalogue.mark_missing(gone)
        if marked:
            LOG.warning('Storage sync: %d artifact(s) vanished from storage '
                        'and are marked missing: %s', marked,
                        ', '.join(map(str, gone)))
        return marked

    def forget(self, backup: dict) -> None:
        """Delete a backup's records from its targets (before its objects)."""
        for target in backup['targets']:
            try:
                storage = self._storage(target)
                for location, _size in list(records.stored(
                        storage, records.key_of(backup['uuid']))):
                    storage.delete(location)
            except Exception as exc:
                LOG.error('Backup %s: cannot delete its record on target '
                          '%s: %s', backup['id'], target, exc)
