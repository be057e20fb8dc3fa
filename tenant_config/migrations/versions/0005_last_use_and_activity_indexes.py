"""Record when each secret was last used, and index the activity page's queries

Revision ID: 0005
Revises: 0004

The old index on audit_event.tenant_id alone is dropped, because each new
index starts with tenant_id and serves the same lookups, such as the
cascade when a tenant is deleted.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('config_value', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_by', sa.String(length=64), nullable=True))

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_tenant_time', ['tenant_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_event_tenant_key_time', ['tenant_id', 'key', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_event_tenant_action_time', ['tenant_id', 'action', 'created_at', 'id'], unique=False)
        batch_op.drop_index(batch_op.f('ix_audit_event_tenant_id'))


def downgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_tenant_id'), ['tenant_id'], unique=False)
        batch_op.drop_index('ix_audit_event_tenant_action_time')
        batch_op.drop_index('ix_audit_event_tenant_key_time')
        batch_op.drop_index('ix_audit_event_tenant_time')

    with op.batch_alter_table('config_value', schema=None) as batch_op:
        batch_op.drop_column('last_used_by')
        batch_op.drop_column('last_used_at')
