"""Index backup tasks and artifacts for the freshness queries.

``backup check`` and the conductor's metrics group the whole history by
(host, service): these indexes let them read it in that order, without a
full scan, a temporary table or a sort (status_api.StatusQueries).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = '0005'
down_revision = '0004'


def upgrade():
    op.create_index('ix_tasks_freshness', 'tasks',
                    ['kind', 'host', 'service', 'status', 'finished_at',
                     'created_at', 'started_at'])
    op.create_index('ix_artifacts_chains', 'artifacts',
                    ['status', 'host', 'service', 'name', 'parent_id',
                     'size'])
