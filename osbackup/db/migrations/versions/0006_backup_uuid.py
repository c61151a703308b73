"""Give every backup a stable UUID, the name its storage records carry.

Integer ids are local to one catalogue; the UUID is what a catalogue
rebuilt from storage (osbackup-manage catalogue rebuild) recognises a
backup by. Existing backups get one now.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import uuid

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'


def upgrade():
    with op.batch_alter_table('backups') as batch:
        batch.add_column(sa.Column('uuid', sa.String(36)))
    backups = sa.table('backups', sa.column('id', sa.Integer),
                       sa.column('uuid', sa.String(36)))
    conn = op.get_bind()
    for (backup_id,) in conn.execute(sa.select(backups.c.id)).all():
        conn.execute(backups.update().where(backups.c.id == backup_id)
                     .values(uuid=str(uuid.uuid4())))
    with op.batch_alter_table('backups') as batch:
        batch.alter_column('uuid', existing_type=sa.String(36),
                           nullable=False)
        batch.create_unique_constraint('uq_backups_uuid', ['uuid'])
