"""`upstream.strip_secrets`: the typed upstream split into the config compared and written as
the details digest (no secret value, no empty leaf) and its secrets by dotted path. What has
nothing to take out is shared with the config, not copied (100,000 sockets hold one tree each,
not two)."""

from __future__ import annotations

import json

from helpers import REPO
from hypothesis import given
from hypothesis import strategies as st

from reconciler.secrets import Secret
from reconciler.upstream import is_secret_leaf, strip_secrets

PASSWORD = Secret("split-test-password-1", "env:PW")


def test_secrets_and_empty_leaves_are_taken_out_and_the_rest_is_shared() -> None:
    plain = {"hostname": "db.internal", "port": 5432}
    auth = {"username": "app", "password": PASSWORD, "note": ""}
    config = {"service_type": "database", "database_service_configuration": {
        "standard": plain, "username_and_password_auth_configuration": auth,
        "headers": {"token": "a header, not a secret"}}}
    split, secrets = strip_secrets(config)
    block = split["database_service_configuration"]
    assert block["username_and_password_auth_configuration"] == {"username": "app"}
    assert secrets == {"database_service_configuration.username_and_password_auth_configuration"
                       ".password": PASSWORD}
    assert block["standard"] is plain  # nothing taken out: the same dict
    assert block["headers"] == {"token": "a header, not a secret"}
    assert config["database_service_configuration"][
        "username_and_password_auth_configuration"]["password"] is PASSWORD  # not mutated

    clean = {"service_type": "tls", "tls_service_configuration": {"hostname": "h", "port": 1}}
    assert strip_secrets(clean) == (clean, {}) and strip_secrets(clean)[0] is clean


_LEAF = st.one_of(st.none(), st.sampled_from(["", "x", "from:env:X"]), st.integers(0, 3),
                  st.just(PASSWORD))
_KEYS = st.sampled_from(["hostname", "password", "token", "headers", "key", "port", "list"])
_TREES = st.recursive(_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=12)


def _copied(value: object) -> object:
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


@given(st.dictionaries(_KEYS, _TREES, max_size=4))
def test_a_shared_split_is_what_a_copy_would_be(config: dict) -> None:
    """Sharing changes no value: the split of a config equals the split of its deep copy, and
    splitting leaves the config as it was."""
    before = _copied(config)
    assert strip_secrets(config) == strip_secrets(_copied(config))
    assert config == before


def _schema_leaves(schema: dict, path: tuple = ()) -> dict[tuple, bool]:
    """Every property below `schema` (lists as index 0): is it a `$defs/secret`?"""
    found: dict[tuple, bool] = {}
    for key, sub in (schema.get("properties") or {}).items():
        if sub.get("$ref") == "#/$defs/secret":
            found[(*path, key)] = True
            continue
        found[(*path, key)] = False
        found |= _schema_leaves(sub, (*path, key))
        if isinstance(sub.get("items"), dict):
            found |= _schema_leaves(sub["items"], (*path, key, 0))
    return found


def test_the_secret_leaf_rule_is_the_schemas_secrets() -> None:
    """`is_secret_leaf` (the rule the plaintext warning and the schema messages use) names
    exactly the typed upstream's fields the socket schema types as `$defs/secret`, not a
    header's `key`."""
    schema = json.loads((REPO / "schemas" / "socket.schema.json").read_text())
    leaves = _schema_leaves(schema["$defs"]["typedUpstream"])
    secrets = {path for path, secret in leaves.items() if secret}
    assert len(secrets) > 40 and any(path[-3:] == ("headers", 0, "key") for path in leaves)
    assert {path for path in leaves if is_secret_leaf(path)} == secrets
    legacy = _schema_leaves(schema["$defs"]["legacyUpstream"])
    assert {p for p in legacy if is_secret_leaf(p)} == {("password",), ("key",)}
