import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenant_config.crypto import (
    BulkDecryptor, DataKeyCache, DecryptionError, Keyring, KeyFormatError, MasterKey, decrypt_value, decrypt_value_with,
    encrypt_value, generate_master_key, master_key_id, new_data_key, parse_master_key, unwrap_data_key,
    value_associated_data, wrap_data_key,
)

TENANT_A = "0b6f1f54-6a39-4c0c-9d0f-1d2a3b4c5d6e"
TENANT_B = "7d1e2f30-4152-4637-8899-aabbccddeeff"


def test_parse_master_key_accepts_standard_and_urlsafe():
    raw = bytes(range(250, 256)) + bytes(26)
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    assert standard != urlsafe
    assert parse_master_key(standard) == raw
    assert parse_master_key(urlsafe) == raw
    assert parse_master_key(f"  {urlsafe}\n") == raw
    assert parse_master_key(urlsafe.rstrip("=")) == raw


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("   ", "empty"),
    ("not base64 at all!", "not valid base64"),
    (base64.b64encode(bytes(16)).decode(), "16 bytes"),
    (base64.b64encode(bytes(33)).decode(), "33 bytes"),
])
def test_parse_master_key_rejects_without_echo(text, reason):
    with pytest.raises(KeyFormatError) as raised:
        parse_master_key(text)
    assert reason in str(raised.value)
    if text.strip():
        assert text.strip() not in str(raised.value)


def test_master_key_id_is_fingerprint_not_key():
    key = parse_master_key(generate_master_key())
    key_id = master_key_id(key)
    assert len(key_id) == 16
    assert key_id == master_key_id(key)
    assert key_id not in key.hex()
    assert key_id != master_key_id(parse_master_key(generate_master_key()))
    assert key.hex() not in repr(MasterKey(key))


def test_value_roundtrip_uses_fresh_nonce():
    data_key = new_data_key()
    first = encrypt_value(data_key, TENANT_A, "stripe.secret_key", 1, "sk_test_abc")
    second = encrypt_value(data_key, TENANT_A, "stripe.secret_key", 1, "sk_test_abc")
    assert first != second
    assert decrypt_value(data_key, TENANT_A, "stripe.secret_key", first) == "sk_test_abc"
    assert decrypt_value(data_key, TENANT_A, "stripe.secret_key", second) == "sk_test_abc"


def test_value_format_known_vector():
    data_key = bytes(range(32))
    nonce = bytes(range(100, 112))
    blob = encrypt_value(data_key, TENANT_A, "smtp.password", 7, "pässword", nonce_factory=lambda: nonce)

    header = struct.pack(">BI", 1, 7)
    expected_sealed = AESGCM(data_key).encrypt(
        nonce, "pässword".encode(), header + value_associated_data(TENANT_A, "smtp.password", 7)
    )
    assert base64.urlsafe_b64decode(blob) == header + nonce + expected_sealed


@pytest.mark.parametrize("tenant, key_name", [
    (TENANT_B, "stripe.secret_key"),
    (TENANT_A, "slack.webhook_url"),
])
def test_value_bound_to_tenant_and_key(tenant, key_name):
    data_key = new_data_key()
    blob = encrypt_value(data_key, TENANT_A, "stripe.secret_key", 1, "sk_test_abc")
    with pytest.raises(DecryptionError) as raised:
        decrypt_value(data_key, tenant, key_name, blob)
    assert "sk_test_abc" not in str(raised.value)
    assert key_name in str(raised.value)


def _flip(blob: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("index", [0, 1, 4, 5, 16, 17, -1])
def test_flipped_byte_fails(index):
    data_key = new_data_key()
    blob = encrypt_value(data_key, TENANT_A, "smtp.password", 1, "secret-password")
    with pytest.raises(DecryptionError):
        decrypt_value(data_key, TENANT_A, "smtp.password", _flip(blob, index))


@pytest.mark.parametrize("blob", ["", "!!!", "AAAA", base64.urlsafe_b64encode(b"\x01" + bytes(40)).decode()])
def test_malformed_blob_fails_same_way(blob):
    with pytest.raises(DecryptionError):
        decrypt_value(new_data_key(), TENANT_A, "smtp.password", blob)


def test_wrong_data_key_fails():
    blob = encrypt_value(new_data_key(), TENANT_A, "smtp.password", 1, "secret-password")
    with pytest.raises(DecryptionError):
        decrypt_value(new_data_key(), TENANT_A, "smtp.password", blob)


def test_data_key_wrap_roundtrip_and_binding():
    master = MasterKey(parse_master_key(generate_master_key()))
    keyring = Keyring(master)
    data_key = new_data_key()
    wrapped = wrap_data_key(master, TENANT_A, 1, data_key)

    assert unwrap_data_key(keyring, TENANT_A, 1, master.id, wrapped) == data_key
    with pytest.raises(DecryptionError):
        unwrap_data_key(keyring, TENANT_B, 1, master.id, wrapped)
    with pytest.raises(DecryptionError):
        unwrap_data_key(keyring, TENANT_A, 2, master.id, wrapped)


def test_wrong_master_key_fails():
    master = MasterKey(parse_master_key(generate_master_key()))
    other = MasterKey(parse_master_key(generate_master_key()))
    wrapped = wrap_data_key(master, TENANT_A, 1, new_data_key())

    with pytest.raises(DecryptionError):
        unwrap_data_key(Keyring(other), TENANT_A, 1, master.id, wrapped)
    with pytest.raises(DecryptionError):
        unwrap_data_key(Keyring(other), TENANT_A, 1, other.id, wrapped)


def test_keyring_rejects_duplicate_keys():
    key = parse_master_key(generate_master_key())
    with pytest.raises(KeyFormatError, match="more than once"):
        Keyring(MasterKey(key), [MasterKey(key)])


def test_data_key_cache_is_bounded_lru():
    cache = DataKeyCache(max_entries=2)
    cache.put("a", 1, "wa", b"A" * 32)
    cache.put("b", 1, "wb", b"B" * 32)
    assert cache.get("a", 1, "wa") == b"A" * 32
    cache.put("c", 1, "wc", b"C" * 32)

    assert len(cache) == 2
    assert cache.get("b", 1, "wb") is None
    assert cache.get("a", 1, "wa") == b"A" * 32
    assert cache.get("a", 1, "other-wrapping") is None
    assert "A" * 8 not in repr(cache)


def test_data_key_cache_keeps_aead_of_each_key():
    cache = DataKeyCache(max_entries=2)
    acme_key, globex_key = new_data_key(), new_data_key()
    acme_aead = cache.put(TENANT_A, 1, "wa", acme_key)
    globex_aead = cache.put(TENANT_B, 1, "wb", globex_key)
    acme_blob = encrypt_value(acme_key, TENANT_A, "smtp.password", 1, "acme-password")

    assert cache.get_aead(TENANT_A, 1, "wa") is acme_aead
    assert cache.get_aead(TENANT_B, 1, "wb") is globex_aead
    assert cache.get_aead(TENANT_A, 1, "other-wrapping") is None
    assert cache.get(TENANT_A, 1, "wa") == acme_key
    assert decrypt_value_with(acme_aead, TENANT_A, "smtp.password", acme_blob) == "acme-password"
    with pytest.raises(DecryptionError):
        decrypt_value_with(globex_aead, TENANT_A, "smtp.password", acme_blob)


@pytest.mark.parametrize("tenant, key_name, blob_change", [
    (TENANT_B, "smtp.password", None),
    (TENANT_A, "stripe.secret_key", None),
    (TENANT_A, "smtp.password", -1),
    (TENANT_A, "smtp.password", 4),
])
def test_decrypt_value_with_fails_like_decrypt_value(tenant, key_name, blob_change):
    data_key = new_data_key()
    blob = encrypt_value(data_key, TENANT_A, "smtp.password", 1, "secret-password")
    if blob_change is not None:
        blob = _flip(blob, blob_change)

    with pytest.raises(DecryptionError) as raised:
        decrypt_value_with(AESGCM(data_key), tenant, key_name, blob, tenant_label="acme")
    assert str(raised.value) == f"cannot decrypt {key_name!r} for tenant 'acme'"
    with pytest.raises(DecryptionError):
        decrypt_value(data_key, tenant, key_name, blob)


def _bulk_fixture():
    master = MasterKey(parse_master_key(generate_master_key()))
    data_key = new_data_key()
    wrapped = wrap_data_key(master, TENANT_A, 3, data_key)
    blob = encrypt_value(data_key, TENANT_A, "smtp.password", 3, "pässword")
    return master, wrapped, blob


def test_bulk_decryptor_reads_what_product_writes():
    master, wrapped, blob = _bulk_fixture()
    other = MasterKey(parse_master_key(generate_master_key()))
    decryptor = BulkDecryptor(Keyring(other, [master]), "smtp.password")

    assert decryptor.decrypt(TENANT_A, 3, master.id, wrapped, blob, "acme") == "pässword"
    assert decryptor.decrypt(TENANT_A, 3, master.id, wrapped, blob, "acme") == "pässword"


def test_bulk_decryptor_keeps_tenants_apart():
    old_master = MasterKey(parse_master_key(generate_master_key()))
    new_master = MasterKey(parse_master_key(generate_master_key()))
    acme_key, globex_key = new_data_key(), new_data_key()
    acme = (TENANT_A, 1, old_master.id, wrap_data_key(old_master, TENANT_A, 1, acme_key),
            encrypt_value(acme_key, TENANT_A, "smtp.password", 1, "acme-password"))
    globex = (TENANT_B, 2, new_master.id, wrap_data_key(new_master, TENANT_B, 2, globex_key),
              encrypt_value(globex_key, TENANT_B, "smtp.password", 2, "globex-password"))
    decryptor = BulkDecryptor(Keyring(new_master, [old_master]), "smtp.password")

    assert decryptor.decrypt(*acme, "acme") == "acme-password"
    assert decryptor.decrypt(*globex, "globex") == "globex-password"
    assert decryptor.decrypt(*acme, "acme") == "acme-password"
    with pytest.raises(DecryptionError, match="'globex'"):
        decryptor.decrypt(TENANT_B, 2, new_master.id, globex[3], acme[4], "globex")
    with pytest.raises(DecryptionError, match="'globex'"):
        decryptor.decrypt(TENANT_B, 1, old_master.id, acme[3], acme[4], "globex")


@pytest.mark.parametrize("change", [
    "other tenant", "other key name", "other data key version", "unknown master key", "flipped value byte",
    "flipped data key byte", "malformed value", "malformed data key", "unknown value format",
    "unknown data key format",
])
def test_bulk_decryptor_fails_like_single_path(change):
    master, wrapped, blob = _bulk_fixture()
    tenant, key_name, version, master_id = TENANT_A, "smtp.password", 3, master.id
    if change == "other tenant":
        tenant = TENANT_B
    elif change == "other key name":
        key_name = "stripe.secret_key"
    elif change == "other data key version":
        version = 4
    elif change == "unknown master key":
        master_id = "0" * 16
    elif change == "flipped value byte":
        blob = _flip(blob, -1)
    elif change == "flipped data key byte":
        wrapped = _flip(wrapped, 20)
    elif change == "malformed value":
        blob = "!!!"
    elif change == "malformed data key":
        wrapped = "AAAA"
    elif change == "unknown value format":
        blob = _flip(blob, 0)
    elif change == "unknown data key format":
        wrapped = _flip(wrapped, 0)

    decryptor = BulkDecryptor(Keyring(master), key_name)
    with pytest.raises(DecryptionError) as raised:
        decryptor.decrypt(tenant, version, master_id, wrapped, blob, "acme")
    assert str(raised.value) == f"cannot decrypt {key_name!r} for tenant 'acme'"
