"""SQLAlchemy models of the catalogue.

The catalogue is the conductor's truth: every backup, the task sent to each
(host, service), every stored artifact, every restore and its steps. Times
are the conductor's clock (UTC), never an agent's.
"""

import sqlalchemy as sa
from sqlalchemy import orm


class Base(orm.DeclarativeBase):
    pass


class Agent(Base):
    __tablename__ = 'agents'

    id = sa.Column(sa.Integer, primary_key=True)
    host = sa.Column(sa.String(255), nullable=False, unique=True)
    version = sa.Column(sa.String(64))
    info = sa.Column(sa.JSON, nullable=False, default=dict)
    created_at = sa.Column(sa.DateTime, nullable=False)
    last_heartbeat = sa.Column(sa.DateTime, nullable=False)
    #: Set by the agent's goodbye (a clean stop), cleared by a heartbeat.
    stopped_at = sa.Column(sa.DateTime)
    #: The agent's clock minus the conductor's (seconds), from its seals.
    clock_offset = sa.Column(sa.Float)
    #: When a heartbeat was last refused only for its time (clock skew).
    skewed_at = sa.Column(sa.DateTime)


class AgentRejection(Base):
    """A sender whose heartbeats are refused (its claim is unproven)."""
    __tablename__ = 'agent_rejections'

    host = sa.Column(sa.String(255), primary_key=True)
    reason = sa.Column(sa.Text, nullable=False)
    count = sa.Column(sa.Integer, nullable=False)
    first_at = sa.Column(sa.DateTime, nullable=False)
    last_at = sa.Column(sa.DateTime, nullable=False)


class Backup(Base):
    __tablename__ = 'backups'

    id = sa.Column(sa.Integer, primary_key=True)
    #: Stable across catalogues: what storage records name a backup by.
    uuid = sa.Column(sa.String(36), nullable=False, unique=True)
    status = sa.Column(sa.String(16), nullable=False)
    hosts = sa.Column(sa.JSON, nullable=False, default=list)
    services = sa.Column(sa.JSON, nullable=False, default=list)
    policy = sa.Column(sa.String(255))
    targets = sa.Column(sa.JSON, nullable=False, default=list)
    verified = sa.Column(sa.JSON)
    created_at = sa.Column(sa.DateTime, nullable=False)
    finished_at = sa.Column(sa.DateTime)
    error = sa.Column(sa.Text)


class Policy(Base):
    __tablename__ = 'policies'

    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(255), nullable=False, unique=True)
    schedule = sa.Column(sa.String(255), nullable=False)
    hosts = sa.Column(sa.JSON, nullable=False, default=list)
    services = sa.Column(sa.JSON, nullable=False, default=list)
    targets = sa.Column(sa.JSON, nullable=False, default=list)
    keep_days = sa.Column(sa.Integer, nullable=False, default=0)
    keep_last = sa.Column(sa.Integer, nullable=False, default=0)
    keep_daily = sa.Column(sa.Integer, nullable=False, default=0)
    keep_weekly = sa.Column(sa.Integer, nullable=False, default=0)
    keep_monthly = sa.Column(sa.Integer, nullable=False, default=0)
    verify_schedule = sa.Column(sa.String(255))
    verify_deep = sa.Column(sa.Boolean, nullable=False, default=False)
    distribute_rings = sa.Column(sa.Boolean, nullable=False, default=False)
    enabled = sa.Column(sa.Boolean, nullable=False, default=True)
    next_run_at = sa.Column(sa.DateTime)
    next_verify_at = sa.Column(sa.DateTime)
    created_at = sa.Column(sa.DateTime, nullable=False)
    updated_at = sa.Column(sa.DateTime, nullable=False)


class ArtifactCopy(Base):
    __tablename__ = 'artifact_copies'

    id = sa.Column(sa.Integer, primary_key=True)
    artifact_id = sa.Column(sa.Integer, sa.ForeignKey('artifacts.id'),
                            nullable=False, index=True)
    target = sa.Column(sa.String(64), nullable=False)
    location = sa.Column(sa.Text, nullable=False)
    size = sa.Column(sa.BigInteger)
    sha256 = sa.Column(sa.String(64))
    status = sa.Column(sa.String(16), nullable=False)
    created_at = sa.Column(sa.DateTime, nullable=False)


class Verification(Base):
    __tablename__ = 'verifications'

    id = sa.Column(sa.Integer, primary_key=True)
    backup_id = sa.Column(sa.Integer, sa.ForeignKey('backups.id'),
                          nullable=False, index=True)
    deep = sa.Column(sa.Boolean, nullable=False, default=False)
    status = sa.Column(sa.String(16), nullable=False)
    problems = sa.Column(sa.JSON, nullable=False, default=list)
    details = sa.Column(sa.JSON, nullable=False, default=list)
    created_at = sa.Column(sa.DateTime, nullable=False)
    finished_at = sa.Column(sa.DateTime)


class Task(Base):
    __tablename__ = 'tasks'
    __table_args__ = (sa.Index('ix_tasks_status', 'status'),
                      sa.Index('ix_tasks_backup_kind_status', 'backup_id',
                               'kind', 'status'),
                      # The freshness queries read backups in this order.
                      sa.Index('ix_tasks_freshness', 'kind', 'host',
                               'service', 'status', 'finished_at',
                               'created_at', 'started_at'))

    id = sa.Column(sa.String(36), primary_key=True)
    backup_id = sa.Column(sa.Integer, sa.ForeignKey('backups.id'),
                          index=True)
    restore_id = sa.Column(sa.Integer, sa.ForeignKey('restores.id'),
                           index=True)
    verification_id = sa.Column(sa.Integer,
                                sa.ForeignKey('verifications.id'),
                                index=True)
    kind = sa.Column(sa.String(32), nullable=False)
    host = sa.Column(sa.String(255), nullable=False)
    service = sa.Column(sa.String(64), nullable=False)
    params = sa.Column(sa.JSON, nullable=False, default=dict)
    status = sa.Column(sa.String(16), nullable=False)
    created_at = sa.Column(sa.DateTime, nullable=False)
    updated_at = sa.Column(sa.DateTime, nullable=False)
    started_at = sa.Column(sa.DateTime)
    finished_at = sa.Column(sa.DateTime)
    expires_at = sa.Column(sa.DateTime, nullable=False)
    progress_bytes = sa.Column(sa.BigInteger, nullable=False, default=0)
    progress_files = sa.Column(sa.Integer, nullable=False, default=0)
    result = sa.Column(sa.JSON)
    error = sa.Column(sa.Text)


class Artifact(Base):
    __tablename__ = 'artifacts'
    # The freshness queries (bytes stored, chains) read in this order.
    __table_args__ = (sa.Index('ix_artifacts_chains', 'status', 'host',
                               'service', 'name', 'parent_id', 'size'),)

    id = sa.Column(sa.Integer, primary_key=True)
    backup_id = sa.Column(sa.Integer, sa.ForeignKey('backups.id'),
                          nullable=False, index=True)
    task_id = sa.Column(sa.String(36), sa.ForeignKey('tasks.id'),
                        nullable=False)
    host = sa.Column(sa.String(255), nullable=False)
    service = sa.Column(sa.String(64), nullable=False)
    name = sa.Column(sa.String(255), nullable=False)
    kind = sa.Column(sa.String(16), nullable=False)
    status = sa.Column(sa.String(16), nullable=False)
    location = sa.Column(sa.Text)
    size = sa.Column(sa.BigInteger)
    sha256 = sa.Column(sa.String(64))
    meta = sa.Column(sa.JSON, nullable=False, default=dict)
    created_at = sa.Column(sa.DateTime, nullable=False)
    #: The artifact an incremental one is based on; a base cannot be
    #: forgotten while an artifact still needs it.
    parent_id = sa.Column(sa.Integer, sa.ForeignKey(
        'artifacts.id', name='fk_artifacts_parent'), index=True)


class Restore(Base):
    __tablename__ = 'restores'

    id = sa.Column(sa.Integer, primary_key=True)
    #: NULL for a cluster recovery, which restores no backup.
    backup_id = sa.Column(sa.Integer, sa.ForeignKey('backups.id'))
    status = sa.Column(sa.String(16), nullable=False)
    hosts = sa.Column(sa.JSON, nullable=False, default=list)
    services = sa.Column(sa.JSON, nullable=False, default=list)
    plan = sa.Column(sa.JSON, nullable=False, default=list)
    phase = sa.Column(sa.Integer, nullable=False, default=0)
    created_at = sa.Column(sa.DateTime, nullable=False)
    finished_at = sa.Column(sa.DateTime)
    error = sa.Column(sa.Text)


class RestoreStep(Base):
    __tablename__ = 'restore_steps'

    id = sa.Column(sa.Integer, primary_key=True)
    restore_id = sa.Column(sa.Integer, sa.ForeignKey('restores.id'),
                           nullable=False, index=True)
    seq = sa.Column(sa.Integer, nullable=False)
    phase = sa.Column(sa.String(32), nullable=False)
    host = sa.Column(sa.String(255), nullable=False)
    action = sa.Column(sa.String(32), nullable=False)
    target = sa.Column(sa.String(255), nullable=False)
    status = sa.Column(sa.String(16), nullable=False)
    error = sa.Column(sa.Text)
    at = sa.Column(sa.DateTime, nullable=False)
