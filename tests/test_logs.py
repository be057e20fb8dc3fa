import logging

from tenant_config.logs import configure_logging, redact

HOOK = "https://hooks.slack.com/services/T0LOG/B0LOG/logSecretPath9"
KEY = "sk_live_logSecretKey0009"


def test_redact_masks_secret_shapes():
    text = redact(f"posting to {HOOK} with {KEY} and rk_test_restricted1")
    assert "logSecretPath9" not in text
    assert KEY not in text
    assert "rk_test_restricted1" not in text
    assert "https://hooks.slack.com/services/[redacted]" in text


def test_log_records_mask_messages_and_tracebacks(caplog):
    configure_logging()
    caplog.set_level(logging.DEBUG)
    logger = logging.getLogger("tenant_config.test")

    logger.info("calling %s", HOOK)
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        logger.exception("request failed")

    assert "calling https://hooks.slack.com/services/[redacted]" in caplog.text
    assert "ValueError: bad key [redacted]" in caplog.text
    assert "logSecretPath9" not in caplog.text
    assert KEY not in caplog.text
