"""Connector command templates: argv rendering, placeholders, validation; target building."""

from __future__ import annotations

import sys

import pytest

from reconciler.connectors.argv import (
    DEFAULT_TEMPLATE,
    LOCAL_CONNECTOR_TEMPLATE,
    ConnectorTarget,
    TemplateError,
    env_for_token,
    render_command,
    validate_template,
)
from reconciler.connectors.supervisor import Supervisor, connector_targets
from reconciler.model import Actual, ConnectorSpec, Desired, LiveSocket, SocketSpec


def target(**spec) -> ConnectorTarget:
    return ConnectorTarget("web", ConnectorSpec(**spec), "tls", "sid-1", (41000, 41001))


def test_default_template_is_the_seed_cli_with_flags_from_the_spec():
    argv = render_command(
        DEFAULT_TEMPLATE,
        target(host="db.internal", port=5432, httpserver=True, httpserver_dir="/srv/my site",
               sshserver=True, identity_file="/k/id", proxy="http://proxy:3128"),
    )
    assert argv == [
        "border0", "socket", "connect", "web", "--host", "db.internal", "--port", "5432",
        "--httpserver", "--httpserver_dir", "/srv/my site", "--sshserver",
        "--identity_file", "/k/id", "--proxy", "http://proxy:3128",
    ]


def test_unset_values_drop_their_option():
    assert render_command(DEFAULT_TEMPLATE, target(httpserver=True)) == [
        "border0", "socket", "connect", "web", "--httpserver",
    ]
    assert render_command(DEFAULT_TEMPLATE, target(port=22)) == [
        "border0", "socket", "connect", "web", "--port", "22",
    ]


def test_local_template_listens_on_the_allocated_port():
    argv = render_command(LOCAL_CONNECTOR_TEMPLATE, target(host="127.0.0.1", port=8080))
    assert argv == [sys.executable, "-m", "reconciler", "local-connector", "web",
                    "--listen-port", "41000", "--host", "127.0.0.1", "--port", "8080"]
    argv = render_command(LOCAL_CONNECTOR_TEMPLATE, target(httpserver_dir="/d"))
    assert argv[-5:] == ["--listen-port", "41000", "--httpserver", "--httpserver-dir", "/d"]
    argv = render_command(LOCAL_CONNECTOR_TEMPLATE, target(sshserver=True))
    assert argv[-3:] == ["--listen-port", "41000", "--sshserver"]


def test_custom_template_placeholders_and_quoting():
    argv = render_command(
        "my-connector --id={socket_id} --type {type} 'two words {name}' --ports {socket_ports} {{x}}",
        target(),
    )
    assert argv == ["my-connector", "--id=sid-1", "--type", "tls", "two words web",
                    "--ports", "41000,41001", "{x}"]


def test_a_value_with_shell_syntax_stays_one_argument():
    argv = render_command(DEFAULT_TEMPLATE, target(host="h; rm -rf /", port=1))
    assert "h; rm -rf /" in argv


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("connect {nmae}", "unknown placeholder {nmae}"),
        ("connect {name!r}", "no format"),
        ("connect --x={flags}", "on its own"),
        ("connect 'unclosed", "No closing quotation"),
        ("", "empty"),
        ("connect {name", "connector command template"),
    ],
)
def test_bad_templates_are_refused_up_front(template, message):
    with pytest.raises(TemplateError, match=message):
        validate_template(template)
    with pytest.raises(TemplateError):
        Supervisor(command_template=template)


def test_token_goes_to_the_environment():
    assert env_for_token("t0k") == {"BORDER0_ADMIN_TOKEN": "t0k", "BORDER0_TOKEN": "t0k"}
    assert env_for_token(None) == {}


def test_connector_targets_only_for_enabled_connectors_of_existing_sockets():
    desired = Desired(sockets={
        "a": SocketSpec("a", "tls", connector=ConnectorSpec(host="h", port=1)),
        "b": SocketSpec("b", "tls", connector=ConnectorSpec(enabled=False)),
        "c": SocketSpec("c", "http"),
        "d": SocketSpec("d", "tls", connector=ConnectorSpec(port=2)),  # not in border0 yet
    })
    actual = Actual(sockets={n: LiveSocket(f"id-{n}", n, "tls", tcp_ports=(40000,)) for n in "abc"})
    targets = connector_targets(desired, actual)
    assert list(targets) == ["a"]
    assert targets["a"] == ConnectorTarget("a", ConnectorSpec(host="h", port=1), "tls", "id-a",
                                           (40000,))
