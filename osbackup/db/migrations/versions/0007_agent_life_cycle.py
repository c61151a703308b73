"""Agents: stopped, clock offset, rejected senders.

``stopped_at``: the agent said goodbye (a clean stop), so it is down at
once instead of after ``agent_down_time``. ``clock_offset`` and
``skewed_at``: the agent's clock minus the conductor's, measured from
its heartbeats' seals, and when a heartbeat was last refused only for
its time. ``agent_rejections``: senders whose heartbeats the conductor
refuses (no key, another key), so ``agent list`` can show them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'


def upgrade():
    with op.batch_alter_table('agents') as batch:
        batch.add_column(sa.Column('stopped_at', sa.DateTime))
        batch.add_column(sa.Column('clock_offset', sa.Float))
        batch.add_column(sa.Column('skewed_at', sa.DateTime))
    op.create_table(
        'agent_rejections',
        sa.Column('host', sa.String(255), primary_key=True),
        sa.Column('reason', sa.Text, nullable=False),
        sa.Column('count', sa.Integer, nullable=False),
        sa.Column('first_at', sa.DateTime, nullable=False),
        sa.Column('last_at', sa.DateTime, nullable=False),
    )
