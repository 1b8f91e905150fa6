"""rendering: the shared cache of variants' public views, per (item version, seed, format)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('rendering',
    sa.Column('item_version_id', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('format', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('view', sa.JSON(), nullable=False),
    sa.Column('solution_html', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_version_id'], ['item_version.id'], name=op.f('fk_rendering_item_version_id_item_version'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_version_id', 'seed', 'format', name=op.f('pk_rendering'))
    )


def downgrade() -> None:
    op.drop_table('rendering')
