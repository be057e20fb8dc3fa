import logging
import pickle

import pytest

from tenant_config.secret import Secret


def test_secret_masks_every_rendering(caplog):
    secret = Secret("sk_test_supersecret", "stripe.secret_key")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("resolved %s %r %s", secret, secret, f"{secret} {secret!r} {secret:>20}")

    assert "supersecret" not in str(secret)
    assert "supersecret" not in repr(secret)
    assert "supersecret" not in f"{secret:>30}"
    assert "supersecret" not in caplog.text
    assert "stripe.secret_key" in repr(secret)


def test_secret_reveal_and_compare():
    assert Secret("value").reveal() == "value"
    assert Secret("value") == Secret("value")
    assert Secret("value") != Secret("other")


def test_secret_cannot_be_pickled():
    with pytest.raises(TypeError):
        pickle.dumps(Secret("sk_test_supersecret"))
