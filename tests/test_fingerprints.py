"""Keyed secret fingerprints (issue 23, item 7): a tag every member of the organization can read
gives no way to test a guess without the reconciler's key; older scrypt tags still verify."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest
from documents import ours

from reconciler import secrets
from reconciler.model import Actual, Desired, LiveSocket, SocketSpec
from reconciler.plan.planner import make_plan
from reconciler.secrets import (
    FINGERPRINT_KEY_ENV,
    FingerprintKeyError,
    Secret,
    fingerprint,
    fingerprint_tag,
    legacy_fingerprint,
    load_fingerprint_key,
    use_fingerprint_key,
    verify,
)

PASSWORD = "s3cret-Pw!"


@pytest.fixture(autouse=True)
def key() -> bytes:
    """A known key for each test (the module keeps one per process)."""
    value = b"k" * 32
    use_fingerprint_key(value)
    yield value
    use_fingerprint_key(os.urandom(32))


def _unb64(text: str) -> bytes:
    return secrets._unb64(text)


def test_without_the_key_a_tag_gives_no_way_to_test_a_guess(key: bytes) -> None:
    tag = fingerprint(Secret(PASSWORD))
    scheme, key_id, salt, mac = tag.split("$")
    assert scheme == "hmac-sha256"
    salt_bytes, mac_bytes = _unb64(salt), _unb64(mac)
    # what an attacker can compute from the tag and a (right) guess, without the key:
    unkeyed = [
        hashlib.sha256(salt_bytes + PASSWORD.encode()).digest(),
        hashlib.sha256(PASSWORD.encode() + salt_bytes).digest(),
        hmac.new(salt_bytes, PASSWORD.encode(), hashlib.sha256).digest(),
        hmac.new(b"", salt_bytes + PASSWORD.encode(), hashlib.sha256).digest(),
        hashlib.scrypt(PASSWORD.encode(), salt=salt_bytes, n=1024, r=1, p=1, dklen=32),
    ]
    assert mac_bytes not in unkeyed
    # the same guess under any other key does not verify either
    use_fingerprint_key(b"an attacker's guess at a key!!")
    assert not verify(Secret(PASSWORD), tag)
    use_fingerprint_key(key)
    assert verify(Secret(PASSWORD), tag) and not verify(Secret("s3cret-Pw?"), tag)
    assert PASSWORD not in tag and key_id not in key.decode()


def test_the_same_secret_gets_a_different_tag_on_every_socket() -> None:
    assert fingerprint(Secret(PASSWORD)) != fingerprint(Secret(PASSWORD))


def test_old_scrypt_fingerprints_still_verify_so_an_upgrade_plans_no_secret_write() -> None:
    old = legacy_fingerprint(Secret(PASSWORD))
    assert old.startswith("scrypt$10$1$1$") and verify(Secret(PASSWORD), old)
    spec = SocketSpec("db", "database", upstream_type="postgres", secrets_by_field={"upstream_password": Secret(PASSWORD)})
    live = LiveSocket("id-db", "db", "database", upstream_type="postgres",
                      tags={**ours(), fingerprint_tag("upstream_password"): old})
    plan = make_plan(Desired(sockets={"db": spec}), Actual(sockets={"db": live}))
    assert plan.changes == []


def test_a_lost_key_costs_one_secret_write_per_socket_and_the_plan_says_why() -> None:
    tag = fingerprint(Secret(PASSWORD))
    use_fingerprint_key(b"a new key after the old one was lost")
    spec = SocketSpec("db", "database", upstream_type="postgres", secrets_by_field={"upstream_password": Secret(PASSWORD)})
    live = LiveSocket("id-db", "db", "database", upstream_type="postgres",
                      tags={**ours(), fingerprint_tag("upstream_password"): tag})
    (change,) = make_plan(Desired(sockets={"db": spec}), Actual(sockets={"db": live})).changes
    assert change.action.value == "update"
    assert "the fingerprint of upstream_password was made with another key" in change.reason
    # written once with the new key: the next plan has nothing to do
    live = LiveSocket("id-db", "db", "database", upstream_type="postgres",
                      tags={**ours(), fingerprint_tag("upstream_password"):
                            fingerprint(Secret(PASSWORD))})
    assert make_plan(Desired(sockets={"db": spec}), Actual(sockets={"db": live})).changes == []


def test_the_key_comes_from_the_environment_or_a_0600_file_in_the_state(tmp_path: Path) -> None:
    shared = "0123456789abcdef0123456789abcdef"
    assert load_fingerprint_key(tmp_path / "a", {FINGERPRINT_KEY_ENV: shared}) == shared.encode()
    assert not (tmp_path / "a").exists()  # the environment's key leaves no file behind
    with pytest.raises(FingerprintKeyError, match="too short"):
        load_fingerprint_key(tmp_path, {FINGERPRINT_KEY_ENV: "short"})

    first = load_fingerprint_key(tmp_path / "state", {})
    path = tmp_path / "state" / "fingerprint.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_fingerprint_key(tmp_path / "state", {}) == first  # the same key next time
    path.chmod(0o644)
    with pytest.raises(FingerprintKeyError, match="chmod 600"):
        load_fingerprint_key(tmp_path / "state", {})
