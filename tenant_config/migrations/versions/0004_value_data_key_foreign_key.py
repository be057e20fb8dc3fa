"""Make each encrypted value reference its tenant's data key

Revision ID: 0004
Revises: 0003

A value names the data key that encrypted it by (tenant_id, data_key_version).
With this constraint the database rejects deleting a data key that a value
still uses, and writing a value under a data key that no longer exists, which
is what makes tenant key rotation safe under concurrent saves.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('config_value', schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f('fk_config_value_tenant_id_tenant_data_key'), 'tenant_data_key',
            ['tenant_id', 'data_key_version'], ['tenant_id', 'version'],
        )


def downgrade():
    with op.batch_alter_table('config_value', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_config_value_tenant_id_tenant_data_key'), type_='foreignkey')
