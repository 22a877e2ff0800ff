"""The one home of the secret rules (reconciler/secrets.py): the list of secret fields every
other module derives from, and the one redactor."""

from __future__ import annotations

import json

from helpers import REPO

from reconciler.border0.api_json import socket_create_body
from reconciler.manifests.specs import SOCKET_MANIFEST_PATHS, secret_references
from reconciler.model import LiveSocket, SocketSpec, live_socket_fields, socket_fields
from reconciler.secrets import (
    SECRET_FIELDS,
    SECRET_MANIFEST_PATHS,
    SENSITIVE,
    Secret,
    redact,
    redaction_set,
    scrubbed,
    walk,
)


def test_every_secret_field_is_declared_read_compared_and_importable():
    """A secret field listed once in secrets.py is held by a SocketSpec, read from its manifest
    path (which the schema defines), compared on both sides and written back by `import`."""
    schema = json.loads((REPO / "schemas" / "socket.schema.json").read_text())
    spec = SocketSpec("db", "database",
                      secrets_by_field={name: Secret(f"v-{name}") for name in SECRET_FIELDS})
    live = LiveSocket(socket_id="1", name="db", socket_type="database")
    body = socket_create_body(spec, "default")
    for name, path in SECRET_MANIFEST_PATHS.items():
        assert spec.secret(name) == Secret(f"v-{name}")
        assert socket_fields(spec)[name] == Secret(f"v-{name}")
        assert name in live_socket_fields(live)
        assert body[name] == f"v-{name}"  # sent to border0 on create
        assert SOCKET_MANIFEST_PATHS[name] == ".".join(path)
        assert path in [p for p, _ in secret_references({"spec": {}})]  # read from there
        node = schema
        for part in path:
            if "properties" not in node:  # spec.upstream: typed (if) or legacy (else)
                node = schema["$defs"][node["else"]["$ref"].rsplit("/", 1)[1]]
            node = node["properties"][part]
        assert node, path


def test_each_secret_field_name_is_spelled_in_secrets_py_alone():
    """One home: the client's code names a secret field only in secrets.py; everything else
    goes through SECRET_FIELDS. The emulator is left out on purpose: it is border0's twin and
    speaks border0's fields by its own rules (border0/emulator/rules.py), not our list."""
    package = REPO / "reconciler"
    emulator = package / "border0" / "emulator"
    for name in SECRET_FIELDS:
        homes = sorted(
            str(path.relative_to(package)) for path in package.rglob("*.py")
            if emulator not in path.parents and name in path.read_text(encoding="utf-8")
        )
        assert homes == ["secrets.py"], (name, homes)


def test_secret_fields_keep_their_place_in_the_comparable_form():
    """The secrets sit beside their section's other fields (import writes YAML in this order)."""
    # confirm_delete is a compared field only where set: set it, so every field is listed
    keys = list(socket_fields(SocketSpec("db", "database", confirm_delete=True)))
    assert keys.index("upstream_http_hostname") + 1 == keys.index("upstream_username")
    assert keys.index("protected_username") + 1 == keys.index("protected_password")
    assert list(SOCKET_MANIFEST_PATHS) == keys



def test_passwords_and_the_key_are_secret_by_nature_a_username_only_when_declared():
    """Secret by nature (docs/security.md: passwords, tokens and keys): scrubbed from free text
    and warned about as plaintext in a manifest. A username only with `secret: true`."""
    for name in ("upstream_password", "upstream_key", "protected_password"):
        assert scrubbed(name, Secret("-----BEGIN PRIVATE KEY-----")), name
    assert not scrubbed("upstream_username", Secret("app", "env:U"))
    assert scrubbed("upstream_username", Secret("app", "env:U", declared=True))

def test_redact_replaces_the_longest_value_whole_and_ignores_short_ones():
    values = redaction_set(["pass-word", "pass-word-long", "app", "postgre", None])
    assert values == ("pass-word-long", "pass-word")  # under 8 characters: never scrubbed
    assert redact("x pass-word-long y pass-word z app", values) == (
        "x (sensitive) y (sensitive) z app")


def test_redact_matches_whole_tokens_only():
    values = redaction_set(["s3cret-Pw!", "hunter22"])
    assert redact("login app:s3cret-Pw!@postgres failed", values) == (
        "login app:(sensitive)@postgres failed")
    assert redact("hunter22's hunter222 xhunter22 hunter22", values) == (
        "(sensitive)'s hunter222 xhunter22 (sensitive)")
    assert redact('{"pw": "a\\"b-c-d-e-f"}', redaction_set(['a"b-c-d-e-f'])) == (
        '{"pw": "(sensitive)"}')  # its JSON-escaped form too


def test_walk_shows_secrets_through_its_callback_only():
    data = {"a": [Secret("hunter22"), {"b": (1, "x")}], 2: None}
    assert walk(data, on_secret=lambda _s: SENSITIVE) == {
        "a": [SENSITIVE, {"b": [1, "x"]}], "2": None,
    }
    assert "hunter22" not in repr(walk(data, on_secret=str, on_leaf=repr))
