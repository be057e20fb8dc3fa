"""The signed-in user and the URL's tenant, as requests load them."""

from flask import g
from sqlalchemy import select

from tenant_config import access
from tenant_config.accounts import find_user
from tenant_config.extensions import db
from tenant_config.identity import SessionUser, TenantRef
from tenant_config.models import User


def test_user_and_tenant_from_one_query(app, world):
    with app.test_request_context("/t/acme/settings"):
        user = access.load_session_user(find_user(world.acme_admin).id, "acme")
        tenant, role = g.loaded_tenant[2]

    assert isinstance(user, SessionUser)
    assert user.email == world.acme_admin
    assert isinstance(tenant, TenantRef)
    assert (tenant.slug, tenant.name, role) == ("acme", "Acme", "admin")


def test_outsider_gets_no_tenant(app, world):
    with app.test_request_context("/t/acme/settings"):
        user = access.load_session_user(find_user(world.globex_admin).id, "acme")
        found = g.loaded_tenant[2]

    assert user.email == world.globex_admin
    assert found is None


def test_unknown_user_is_none(app, world):
    with app.test_request_context("/t/acme/settings"):
        assert access.load_session_user(999_999, "acme") is None
        assert access.load_session_user(999_999, None) is None


def test_session_user_repr_hides_token(app, world):
    with app.test_request_context("/"):
        user = access.load_session_user(find_user(world.acme_admin).id, None)

    assert user.session_token
    assert user.session_token not in repr(user)
    assert world.acme_admin in repr(user)


def test_end_sessions_changes_stored_token(app, world):
    with app.test_request_context("/"):
        user = access.load_session_user(find_user(world.acme_admin).id, None)
        user.end_sessions()
        db.session.commit()
        stored = db.session.scalars(select(User.session_token).where(User.id == user.id)).one()

    assert stored != user.session_token
    assert user.get_id() == f"{user.id}:{user.session_token}"
