"""Initial catalogue: agents, backups, tasks, artifacts, restores.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa

revision = '0001'
down_revision = None


def upgrade():
    op.create_table(
        'agents',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('host', sa.String(255), nullable=False, unique=True),
        sa.Column('version', sa.String(64)),
        sa.Column('info', sa.JSON, nullable=False),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('last_heartbeat', sa.DateTime, nullable=False))
    op.create_table(
        'backups',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('hosts', sa.JSON, nullable=False),
        sa.Column('services', sa.JSON, nullable=False),
        sa.Column('policy', sa.String(255)),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('finished_at', sa.DateTime),
        sa.Column('error', sa.Text))
    op.create_table(
        'restores',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('backup_id', sa.Integer, sa.ForeignKey('backups.id'),
                  nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('hosts', sa.JSON, nullable=False),
        sa.Column('services', sa.JSON, nullable=False),
        sa.Column('plan', sa.JSON, nullable=False),
        sa.Column('phase', sa.Integer, nullable=False),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('finished_at', sa.DateTime),
        sa.Column('error', sa.Text))
    op.create_table(
        'tasks',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('backup_id', sa.Integer, sa.ForeignKey('backups.id'),
                  index=True),
        sa.Column('restore_id', sa.Integer, sa.ForeignKey('restores.id'),
                  index=True),
        sa.Column('kind', sa.String(32), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('service', sa.String(64), nullable=False),
        sa.Column('params', sa.JSON, nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('updated_at', sa.DateTime, nullable=False),
        sa.Column('started_at', sa.DateTime),
        sa.Column('finished_at', sa.DateTime),
        sa.Column('expires_at', sa.DateTime, nullable=False),
        sa.Column('progress_bytes', sa.BigInteger, nullable=False),
        sa.Column('progress_files', sa.Integer, nullable=False),
        sa.Column('result', sa.JSON),
        sa.Column('error', sa.Text))
    op.create_index('ix_tasks_status', 'tasks', ['status'])
    op.create_table(
        'artifacts',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('backup_id', sa.Integer, sa.ForeignKey('backups.id'),
                  nullable=False, index=True),
        sa.Column('task_id', sa.String(36), sa.ForeignKey('tasks.id'),
                  nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('service', sa.String(64), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('location', sa.Text),
        sa.Column('size', sa.BigInteger),
        sa.Column('sha256', sa.String(64)),
        sa.Column('meta', sa.JSON, nullable=False),
        sa.Column('created_at', sa.DateTime, nullable=False))
    op.create_table(
        'restore_steps',
        sa.Column('id', sa.Integer, primary_key=True),
        sa.Column('restore_id', sa.Integer, sa.ForeignKey('restores.id'),
                  nullable=False, index=True),
        sa.Column('seq', sa.Integer, nullable=False),
        sa.Column('phase', sa.String(32), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('action', sa.String(32), nullable=False),
        sa.Column('target', sa.String(255), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('error', sa.Text),
        sa.Column('at', sa.DateTime, nullable=False))
