"""Incremental backups: an artifact may be based on an earlier one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'


def upgrade():
    # Batch mode: SQLite cannot add a foreign key to an existing table.
    with op.batch_alter_table('artifacts') as batch:
        batch.add_column(sa.Column('parent_id', sa.Integer, nullable=True))
        batch.create_foreign_key('fk_artifacts_parent', 'artifacts',
                                 ['parent_id'], ['id'])
        batch.create_index('ix_artifacts_parent_id', ['parent_id'])
