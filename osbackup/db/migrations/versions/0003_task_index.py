"""Index tasks by (backup_id, kind, status) for per-report counting.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = '0003'
down_revision = '0002'


def upgrade():
    op.create_index('ix_tasks_backup_kind_status', 'tasks',
                    ['backup_id', 'kind', 'status'])
