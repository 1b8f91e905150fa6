"""accommodations: per student and per group, memberships, audit

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00.000000
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('accommodation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('quiz_id', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('group_name', sa.String(length=100), nullable=True),
    sa.Column('time_multiplier', sa.Float(), nullable=True),
    sa.Column('extra_minutes', sa.Float(), nullable=True),
    sa.Column('extra_attempts', sa.Integer(), nullable=True),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('untimed', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['quiz_id'], ['quiz.id'], name=op.f('fk_accommodation_quiz_id_quiz'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_accommodation_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accommodation')),
    sa.UniqueConstraint('quiz_id', 'group_name', name=op.f('uq_accommodation_quiz_id_group_name')),
    sa.UniqueConstraint('quiz_id', 'user_id', name=op.f('uq_accommodation_quiz_id_user_id'))
    )
    with op.batch_alter_table('accommodation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accommodation_quiz_id'), ['quiz_id'], unique=False)

    op.create_table('accommodation_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('quiz_id', sa.String(length=100), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('group_name', sa.String(length=100), nullable=True),
    sa.Column('old', sa.JSON(), nullable=True),
    sa.Column('new', sa.JSON(), nullable=True),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('changed_by', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['changed_by'], ['user.id'], name=op.f('fk_accommodation_change_changed_by_user')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_accommodation_change_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accommodation_change'))
    )
    with op.batch_alter_table('accommodation_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accommodation_change_quiz_id'), ['quiz_id'], unique=False)

    op.create_table('accommodation_member',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('group_name', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_accommodation_member_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_accommodation_member'))
    )
    with op.batch_alter_table('accommodation_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accommodation_member_group_name'), ['group_name'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('accommodation_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accommodation_member_group_name'))

    op.drop_table('accommodation_member')
    with op.batch_alter_table('accommodation_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accommodation_change_quiz_id'))

    op.drop_table('accommodation_change')
    with op.batch_alter_table('accommodation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accommodation_quiz_id'))

    op.drop_table('accommodation')
