"""Restores: a cluster recovery restores no backup.

``osbackup-manage cluster recover`` runs as a restore (phases, steps,
rollback, the one-restore-at-a-time rule) whose ``backup_id`` is NULL.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'


def upgrade():
    with op.batch_alter_table('restores') as batch:
        batch.alter_column('backup_id', existing_type=sa.Integer,
                           nullable=True)
