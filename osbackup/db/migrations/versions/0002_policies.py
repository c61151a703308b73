"""Policies, artifact copies, verifications; the default policy.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import datetime

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'


def upgrade():
    op.create_table(
        'policies',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('name', sa.String(255), nullable=False, unique=True),
        sa.Column('schedule', sa.String(255), nullable=False),
        sa.Column('hosts', sa.JSON, nullable=False),
        sa.Column('services', sa.JSON, nullable=False),
        sa.Column('targets', sa.JSON, nullable=False),
        sa.Column('keep_days', sa.Integer, nullable=False),
        sa.Column('keep_last', sa.Integer, nullable=False),
        sa.Column('keep_daily', sa.Integer, nullable=False),
        sa.Column('keep_weekly', sa.Integer, nullable=False),
        sa.Column('keep_monthly', sa.Integer, nullable=False),
        sa.Column('verify_schedule', sa.String(255)),
        sa.Column('verify_deep', sa.Boolean, nullable=False),
        sa.Column('distribute_rings', sa.Boolean, nullable=False),
        sa.Column('enabled', sa.Boolean, nullable=False),
        sa.Column('next_run_at', sa.DateTime),
        sa.Column('next_verify_at', sa.DateTime),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('updated_at', sa.DateTime, nullable=False))
    op.create_table(
        'verifications',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('backup_id', sa.Integer, sa.ForeignKey('backups.id'),
                  nullable=False, index=True),
        sa.Column('deep', sa.Boolean, nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('problems', sa.JSON, nullable=False),
        sa.Column('details', sa.JSON, nullable=False),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('finished_at', sa.DateTime))
    op.create_table(
        'artifact_copies',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('artifact_id', sa.Integer, sa.ForeignKey('artifacts.id'),
                  nullable=False, index=True),
        sa.Column('target', sa.String(64), nullable=False),
        sa.Column('location', sa.Text, nullable=False),
        sa.Column('size', sa.BigInteger),
        sa.Column('sha256', sa.String(64)),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('created_at', sa.DateTime, nullable=False))
    with op.batch_alter_table('backups') as batch:
        batch.add_column(sa.Column('targets', sa.JSON))
        batch.add_column(sa.Column('verified', sa.JSON))
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('verification_id', sa.Integer))
        batch.create_foreign_key('fk_tasks_verification_id', 'verifications',
                                 ['verification_id'], ['id'])
        batch.create_index('ix_tasks_verification_id', ['verification_id'])
    # The Operations Guide's recipe: everything, daily, kept 7 days.
    now = datetime.datetime.utcnow().replace(microsecond=0)
    policies = sa.table(
        'policies', sa.column('name'), sa.column('schedule'),
        sa.column('hosts', sa.JSON), sa.column('services', sa.JSON),
        sa.column('targets', sa.JSON), sa.column('keep_days'),
        sa.column('keep_last'), sa.column('keep_daily'),
        sa.column('keep_weekly'), sa.column('keep_monthly'),
        sa.column('verify_deep'), sa.column('distribute_rings'),
        sa.column('enabled'), sa.column('created_at'),
        sa.column('updated_at'))
    op.bulk_insert(policies, [{
        'name': 'default', 'schedule': '0 2 * * *', 'hosts': [],
        'services': [], 'targets': ['local'], 'keep_days': 7,
        'keep_last': 0, 'keep_daily': 0, 'keep_weekly': 0,
        'keep_monthly': 0, 'verify_deep': False, 'distribute_rings': False,
        'enabled': True, 'created_at': now, 'updated_at': now}])
