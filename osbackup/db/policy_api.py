"""Catalogue queries for policies, verifications and pruning.

A mixin of ``Catalogue``: the same sessions, kept apart so each module
stays about one thing. Due policy runs are claimed with compare-and-set on
``next_run_at``: with several conductors, each run happens once.
"""

import datetime

import sqlalchemy as sa

from osbackup.db import models
from osbackup.db import rows
from osbackup import exception
from osbackup import states

POLICY_FIELDS = ('id', 'name', 'schedule', 'hosts', 'services', 'targets',
                 'keep_days', 'keep_last', 'keep_daily', 'keep_weekly',
                 'keep_monthly', 'verify_schedule', 'verify_deep',
                 'distribute_rings', 'enabled', 'next_run_at',
                 'next_verify_at', 'created_at', 'updated_at')
VERIFICATION_FIELDS = ('id', 'backup_id', 'deep', 'status', 'problems',
                       'details', 'created_at', 'finished_at')


class PolicyQueries:
    """Policies, verifications, retention inputs and deletions."""

    # -- policies ------------------------------------------------------

    def create_policy(self, values: dict) -> dict:
        now = rows.now()
        with self.session() as s:
            if s.scalar(sa.select(models.Policy.id).where(
                    models.Policy.name == values['name'])):
                raise exception.Conflict('Policy %r already exists'
                                         % values['name'])
            policy = models.Policy(created_at=now, updated_at=now, **values)
            s.add(policy)
            s.flush()
            return rows.row(policy, *POLICY_FIELDS)

    def _policy(self, s, name):
        policy = s.scalar(sa.select(models.Policy).where(
            models.Policy.name == name))
        if policy is None:
            raise exception.NotFound('Policy %r not found' % name)
        return policy

    def get_policy(self, name: str) -> dict:
        with self.session() as s:
            return rows.row(self._policy(s, name), *POLICY_FIELDS)

    def list_policies(self) -> list[dict]:
        with self.session() as s:
            return [rows.row(p, *POLICY_FIELDS) for p in s.scalars(
                sa.select(models.Policy).order_by(models.Policy.name))]

    def update_policy(self, name: str, values: dict) -> dict:
        with self.session() as s:
            policy = self._policy(s, name)
            for key, value in values.items():
                setattr(policy, key, value)
            policy.updated_at = rows.now()
            s.flush()
            return rows.row(policy, *POLICY_FIELDS)

    def delete_policy(self, name: str) -> None:
        with self.session() as s:
            s.delete(self._policy(s, name))

    def claim_due(self, column: str, now: datetime.datetime,
                  next_at) -> list[dict]:
        """Claim policies whose ``column`` time has come.

        ``next_at(policy) -> datetime`` gives the following time. A policy
        whose time is unset is scheduled, not run. The update only succeeds
        for the conductor that still sees the old value.
        """
        claimed = []
        with self.session() as s:
            policies = s.scalars(sa.select(models.Policy).where(
                models.Policy.enabled.is_(True))).all()
        for policy in policies:
            data = rows.row(policy, *POLICY_FIELDS)
            old = getattr(policy, column)
            following = next_at(data)
            if following is None:
                continue
            due = old is not None and old <= now
            if old is not None and not due:
                continue
            col = getattr(models.Policy, column)
            with self.session() as s:
                won = s.execute(
                    sa.update(models.Policy)
                    .where(models.Policy.id == policy.id,
                           col.is_(None) if old is None else col == old)
                    .values(**{column: following})).rowcount
            if won and due:
                claimed.append(data)
        return claimed

    # -- retention inputs ------------------------------------------------

    def backups_with_artifacts(self) -> list[dict]:
        """Every backup with its artifacts and copies, for retention."""
        with self.session() as s:
            backups = s.scalars(sa.select(models.Backup)
                                .order_by(models.Backup.id)).all()
            arts = s.scalars(sa.select(models.Artifact)).all()
            copies = self._copies(s, [a.id for a in arts])
            backup_of = {a.id: a.backup_id for a in arts}
            by_backup = {}
            for a in arts:
                art = rows.row(a, 'id', 'host', 'service', 'name', 'status',
                               'location', 'size', 'sha256', 'parent_id')
                art['copies'] = copies.get(a.id, [])
                art['parent_backup'] = backup_of.get(a.parent_id)
                by_backup.setdefault(a.backup_id, []).append(art)
            return [{'id': b.id, 'uuid': b.uuid, 'status': b.status,
                     'policy': b.policy,
                     'created_at': b.created_at,
                     'artifacts': by_backup.get(b.id, [])} for b in backups]

    def delete_backup_rows(self, backup_id: int) -> None:
        """Forget a backup whose stored objects are all deleted."""
        with self.session() as s:
            art_ids = list(s.scalars(sa.select(models.Artifact.id).where(
                models.Artifact.backup_id == backup_id)))
            if art_ids:
                s.execute(sa.delete(models.ArtifactCopy).where(
                    models.ArtifactCopy.artifact_id.in_(art_ids)))
            s.execute(sa.delete(models.Artifact).where(
                models.Artifact.backup_id == backup_id))
            ver_ids = list(s.scalars(sa.select(models.Verification.id).where(
                models.Verification.backup_id == backup_id)))
            s.execute(sa.delete(models.Task).where(sa.or_(
                models.Task.backup_id == backup_id,
                models.Task.verification_id.in_(ver_ids or [-1]))))
            s.execute(sa.delete(models.Verification).where(
                models.Verification.backup_id == backup_id))
            # A restore's history outlives the backup it restored (its
            # plan names what it loaded), like a cluster recovery's.
            s.execute(sa.update(models.Restore)
                      .where(models.Restore.backup_id == backup_id)
                      .values(backup_id=None))
            s.execute(sa.delete(models.Backup).where(
                models.Backup.id == backup_id))

    def set_backup_status(self, backup_id: int, status: str,
                          error: str | None = None) -> None:
        with self.session() as s:
            s.execute(sa.update(models.Backup)
                      .where(models.Backup.id == backup_id)
                      .values(status=status, error=error))

    def restores_of(self, backup_id: int, active_only=True) -> list[int]:
        with self.session() as s:
            query = sa.select(models.Restore.id).where(
                models.Restore.backup_id == backup_id)
            if active_only:
                query = query.where(models.Restore.status == states.RUNNING)
            return list(s.scalars(query))

    def newest_good_backup(self, service: str,
                           policy: str | None = None) -> dict | None:
        """The newest backup holding an available artifact of a service."""
        with self.session() as s:
            query = (sa.select(models.Artifact.backup_id)
                     .join(models.Backup,
                           models.Backup.id == models.Artifact.backup_id)
                     .where(models.Artifact.service == service,
                            models.Artifact.status == states.AVAILABLE,
                            models.Backup.status == states.SUCCEEDED)
                     .order_by(models.Artifact.backup_id.desc()).limit(1))
            if policy:
                query = query.where(models.Backup.policy == policy)
            found = s.scalar(query)
        return self.get_backup(found) if found else None

    def last_sizes(self, hosts: list, full: bool = False) -> dict:
        """{(host, service): bytes} of each one's newest good backup.

        Agents compare it with the free space on their targets before
        writing (a backup is about as large as the previous one of its
        level). With ``full``, only backups that are not incremental
        count: the size a full backup will need. The database picks the
        newest backups: history never reaches Python.
        """
        art = models.Artifact
        good = sa.and_(art.host.in_(hosts), art.status == states.AVAILABLE)
        if full:
            good = sa.and_(good, art.parent_id.is_(None))
        newest = (sa.select(art.host, art.service,
                            sa.func.max(art.backup_id).label('backup_id'))
                  .where(good).group_by(art.host, art.service).subquery())
        with self.session() as s:
            found = s.execute(
                sa.select(art.host, art.service, sa.func.sum(art.size))
                .join(newest, sa.and_(art.host == newest.c.host,
                                      art.service == newest.c.service,
                                      art.backup_id == newest.c.backup_id))
                .where(good).group_by(art.host, art.service)).all()
        return {(host, service): int(size or 0)
                for host, service, size in found}

    def chain_bases(self, hosts: list) -> dict:
        """{(host, service): newest available file-set artifact}.

        What an incremental backup of each would be based on: its id,
        backup, sha256 and how many incrementals it already sits on.
        """
        with self.session() as s:
            newest = (sa.select(sa.func.max(models.Artifact.id))
                      .join(models.Backup,
                            models.Backup.id == models.Artifact.backup_id)
                      .where(models.Artifact.host.in_(hosts),
                             models.Artifact.kind == 'files',
                             models.Artifact.status == states.AVAILABLE,
                             models.Backup.status != states.DELETING)
                      .group_by(models.Artifact.host,
                                models.Artifact.service))
            art = models.Artifact
            found = s.execute(sa.select(
                art.id, art.host, art.service, art.backup_id, art.sha256,
                art.location, art.meta).where(art.id.in_(newest))).all()
            return {(a.host, a.service): {
                'artifact_id': a.id, 'backup_id': a.backup_id,
                'sha256': a.sha256, 'location': a.location,
                'depth': int((a.meta or {}).get('depth', 0))}
                for a in found}

    def pending_bases(self) -> set:
        """Backups that running backup tasks write incrementals onto."""
        with self.session() as s:
            params = s.scalars(sa.select(models.Task.params).where(
                models.Task.kind == 'backup',
                models.Task.status.in_(states.TASK_ACTIVE))).all()
        return {int(p['base']['backup_id']) for p in params
                if p and p.get('base')}

    def chain_links(self, backup_id: int) -> tuple[set, set]:
        """(backups based on this one, backups this one is based on)."""
        with self.session() as s:
            own = sa.select(models.Artifact.id).where(
                models.Artifact.backup_id == backup_id)
            parents = sa.select(models.Artifact.parent_id).where(
                models.Artifact.backup_id == backup_id)
            above = set(s.scalars(sa.select(models.Artifact.backup_id).where(
                models.Artifact.parent_id.in_(own))))
            below = set(s.scalars(sa.select(models.Artifact.backup_id).where(
                models.Artifact.id.in_(parents))))
        return above - {backup_id}, below - {backup_id}

    def artifact_chains(self, artifact_ids: list) -> dict:
        """{artifact id: [its bases, nearest first]} for incrementals."""
        out = {}
        with self.session() as s:
            for art_id in artifact_ids:
                chain = []
                parent = s.scalar(sa.select(models.Artifact.parent_id).where(
                    models.Artifact.id == art_id))
                while parent is not None:
                    row = s.get(models.Artifact, parent)
                    chain.append(rows.row(
                        row, 'id', 'backup_id', 'host', 'service', 'name',
                        'kind', 'status', 'location', 'sha256', 'size',
                        'meta', 'parent_id'))
                    parent = row.parent_id
                if chain:
                    out[art_id] = chain
            copies = self._copies(s, [a['id'] for chain in out.values()
                                      for a in chain])
        for chain in out.values():
            for art in chain:
                art['copies'] = copies.get(art['id'], [])
        return out

    def newest_policy_backup(self, policy: str) -> int | None:
        with self.session() as s:
            return s.scalar(sa.select(models.Backup.id).where(
                models.Backup.policy == policy,
                models.Backup.status == states.SUCCEEDED)
                .order_by(models.Backup.id.desc()).limit(1))

    def get_tasks(self, task_ids: list) -> list[dict]:
        with self.session() as s:
            return [rows.row(t, 'id', 'kind', 'host', 'service', 'status',
                             'error', 'result', 'created_at', 'finished_at')
                    for t in s.scalars(sa.select(models.Task).where(
                        models.Task.id.in_(task_ids)).order_by(
                        models.Task.host))]

    # -- verifications ---------------------------------------------------

    def create_verification(self, backup_id: int, deep: bool) -> dict:
        with self.session() as s:
            ver = models.Verification(backup_id=backup_id, deep=deep,
                                      status=states.RUNNING, problems=[],
                                      details=[], created_at=rows.now())
            s.add(ver)
            s.flush()
            return rows.row(ver, *VERIFICATION_FIELDS)

    def get_verification(self, verification_id: int) -> dict:
        with self.session() as s:
            ver = s.get(models.Verification, verification_id)
            if ver is None:
                raise exception.NotFound('Verification %s not found'
                                         % verification_id)
            out = rows.row(ver, *VERIFICATION_FIELDS)
            tasks = s.scalars(sa.select(models.Task).where(
                models.Task.verification_id == verification_id)).all()
            out['tasks'] = [rows.row(t, 'id', 'host', 'status', 'error',
                                     'progress_bytes', 'progress_files')
                            for t in tasks]
            return out

    def finish_verification_if_done(self, verification_id: int
                                    ) -> dict | None:
        """Aggregate a verification's tasks once they have all ended."""
        with self.session() as s:
            ver = s.get(models.Verification, verification_id)
            tasks = s.scalars(sa.select(models.Task).where(
                models.Task.verification_id == verification_id)).all()
            if ver.status != states.RUNNING or any(
                    t.status in states.TASK_ACTIVE for t in tasks):
                return None
            problems, details = [], []
            for t in tasks:
                result = t.result or {}
                problems.extend(result.get('problems', []))
                details.extend(result.get('details', []))
                if t.status != states.SUCCEEDED:
                    problems.append({'host': t.host, 'artifact': None,
                                     'copy': None,
                                     'error': t.error or t.status})
            status = 'CORRUPT' if problems else 'OK'
            now = rows.now()
            done = s.execute(
                sa.update(models.Verification)
                .where(models.Verification.id == verification_id,
                       models.Verification.status == states.RUNNING)
                .values(status=status, problems=problems, details=details,
                        finished_at=now)).rowcount
            if not done:
                return None
            summary = {'status': status, 'deep': ver.deep,
                       'at': rows.iso(now), 'verification_id': ver.id,
                       'problems': len(problems)}
            s.execute(sa.update(models.Backup)
                      .where(models.Backup.id == ver.backup_id)
                      .values(verified=summary))
            if problems:
                bad = {(p.get('artifact_id'), p.get('copy'))
                       for p in problems if p.get('artifact_id')}
                for artifact_id, target in bad:
                    if target in (None, 'primary'):
                        s.execute(sa.update(models.Artifact)
                                  .where(models.Artifact.id == artifact_id)
                                  .values(status=states.CORRUPT))
                    else:
                        s.execute(sa.update(models.ArtifactCopy).where(
                            models.ArtifactCopy.artifact_id == artifact_id,
                            models.ArtifactCopy.target == target)
                            .values(status=states.CORRUPT))
            return summary
