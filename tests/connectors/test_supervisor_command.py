"""Connector command templates: argv rendering, placeholders, validation; target building."""

from __future__ import annotations

import os
import sys

import pytest

from reconciler.connectors.argv import (
    DEFAULT_TEMPLATE,
    LOCAL_CONNECTOR_TEMPLATE,
    ConnectorTarget,
    TemplateError,
    UnsafeWebRoot,
    empty_web_root,
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
    assert render_command(DEFAULT_TEMPLATE, target(httpserver=True, port=22)) == [
        "border0", "socket", "connect", "web", "--port", "22", "--httpserver",
        "--httpserver_dir", empty_web_root(),
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


@pytest.mark.parametrize("template", [DEFAULT_TEMPLATE, LOCAL_CONNECTOR_TEMPLATE,
                                      "my-connector --root {httpserver_dir}"])
def test_the_web_server_without_a_folder_serves_an_empty_one_never_the_cwd(template):
    """Issue 12 #9: border0's connector (and the local one) served the working directory."""
    argv = render_command(template, target(httpserver=True))
    served = argv[argv.index("--httpserver_dir" if template == DEFAULT_TEMPLATE else
                             "--httpserver-dir" if "local-connector" in argv else "--root") + 1]
    assert served == empty_web_root()
    assert os.path.isdir(served) and os.listdir(served) == []
    assert os.path.realpath(served) != os.path.realpath(os.getcwd())


@pytest.mark.parametrize("served", [".", "repo", "repo/", "repo/manifests", "repo/.border0-reconciler",
                                    "link-to-repo", "/"])
@pytest.mark.parametrize("template", [DEFAULT_TEMPLATE, LOCAL_CONNECTOR_TEMPLATE])
def test_a_web_root_holding_the_manifests_or_the_state_is_refused(tmp_path, monkeypatch,
                                                                  template, served):
    repo = tmp_path / "repo"
    (repo / "manifests").mkdir(parents=True)
    (repo / ".border0-reconciler").mkdir()
    (tmp_path / "link-to-repo").symlink_to(repo)
    monkeypatch.chdir(tmp_path)
    protected = [str(repo / "manifests"), str(repo / ".border0-reconciler" / "local.db")]
    with pytest.raises(UnsafeWebRoot, match="may not serve the reconciler's own files"):
        render_command(template, target(httpserver=True, httpserver_dir=served), protected)


def test_a_web_root_of_its_own_is_served_as_named(tmp_path):
    (tmp_path / "repo" / "manifests").mkdir(parents=True)
    (tmp_path / "site").mkdir()
    protected = [str(tmp_path / "repo" / "manifests")]
    site = str(tmp_path / "site")
    argv = render_command(DEFAULT_TEMPLATE, target(httpserver=True, httpserver_dir=site), protected)
    assert argv[-2:] == ["--httpserver_dir", site]
    # a folder beside the manifests, even one whose name starts the same, is its own
    (tmp_path / "repo" / "manifests-site").mkdir()
    beside = str(tmp_path / "repo" / "manifests-site")
    argv = render_command(DEFAULT_TEMPLATE, target(httpserver=True, httpserver_dir=beside),
                          protected)
    assert argv[-1] == beside
