"""LTI 1.3: platforms, keys, one-time values, user links, line items, score outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('lti_key',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('private_pem', sa.Text(), nullable=False),
    sa.Column('public_jwk', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_lti_key'))
    )
    op.create_table('lti_nonce',
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('value', name=op.f('pk_lti_nonce'))
    )
    with op.batch_alter_table('lti_nonce', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_nonce_expires_at'), ['expires_at'], unique=False)

    op.create_table('lti_platform',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=300), nullable=False),
    sa.Column('client_id', sa.String(length=200), nullable=False),
    sa.Column('auth_url', sa.String(length=500), nullable=False),
    sa.Column('token_url', sa.String(length=500), nullable=False),
    sa.Column('jwks_url', sa.String(length=500), nullable=False),
    sa.Column('frame_origins', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_platform')),
    sa.UniqueConstraint('issuer', 'client_id', name=op.f('uq_lti_platform_issuer_client_id'))
    )
    op.create_table('lti_context',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('context_id', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('memberships_url', sa.String(length=1000), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platform.id'], name=op.f('fk_lti_context_platform_id_lti_platform'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_context')),
    sa.UniqueConstraint('platform_id', 'context_id', name=op.f('uq_lti_context_platform_id_context_id'))
    )
    op.create_table('lti_deployment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platform.id'], name=op.f('fk_lti_deployment_platform_id_lti_platform'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_deployment')),
    sa.UniqueConstraint('platform_id', 'deployment_id', name=op.f('uq_lti_deployment_platform_id_deployment_id'))
    )
    op.create_table('lti_line_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('quiz_id', sa.String(length=100), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('lineitem', sa.String(length=1000), nullable=False),
    sa.Column('lti_sub', sa.String(length=255), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['platform_id'], ['lti_platform.id'], name=op.f('fk_lti_line_item_platform_id_lti_platform'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['quiz_id'], ['quiz.id'], name=op.f('fk_lti_line_item_quiz_id_quiz'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_lti_line_item_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_line_item')),
    sa.UniqueConstraint('user_id', 'quiz_id', 'platform_id', 'lineitem', name=op.f('uq_lti_line_item_user_id_quiz_id_platform_id_lineitem'))
    )
    with op.batch_alter_table('lti_line_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_line_item_quiz_id'), ['quiz_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lti_line_item_user_id'), ['user_id'], unique=False)

    op.create_table('lti_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=300), nullable=False),
    sa.Column('sub', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_lti_user_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_user')),
    sa.UniqueConstraint('issuer', 'sub', name=op.f('uq_lti_user_issuer_sub'))
    )
    with op.batch_alter_table('lti_user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_user_user_id'), ['user_id'], unique=False)

    op.create_table('lti_score_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line_item_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sent_version', sa.Integer(), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_payload', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['line_item_id'], ['lti_line_item.id'], name=op.f('fk_lti_score_outbox_line_item_id_lti_line_item'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lti_score_outbox')),
    sa.UniqueConstraint('line_item_id', name=op.f('uq_lti_score_outbox_line_item_id'))
    )
    with op.batch_alter_table('lti_score_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lti_score_outbox_next_try_at'), ['next_try_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('lti_score_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_score_outbox_next_try_at'))

    op.drop_table('lti_score_outbox')
    with op.batch_alter_table('lti_user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_user_user_id'))

    op.drop_table('lti_user')
    with op.batch_alter_table('lti_line_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_line_item_user_id'))
        batch_op.drop_index(batch_op.f('ix_lti_line_item_quiz_id'))

    op.drop_table('lti_line_item')
    op.drop_table('lti_deployment')
    op.drop_table('lti_context')
    op.drop_table('lti_platform')
    with op.batch_alter_table('lti_nonce', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lti_nonce_expires_at'))

    op.drop_table('lti_nonce')
    op.drop_table('lti_key')
