"""`ls`, `show NAME` and `policies` as a user runs them: against the standalone emulator (an
organization made through its raw API) and against `--api local` after applying the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import cli, copy_examples
from test_import import make_org, run


@pytest.fixture
def org(emulator, tmp_path: Path) -> dict[str, Any]:
    emu = emulator
    ids = make_org(emu.url, emu.token)
    return {"api": ["--api", emu.url], "env": {"BORDER0_ADMIN_TOKEN": emu.token},
            "dir": tmp_path, "ids": ids, "client": emu.client()}


def rows(table: str) -> dict[str, list[str]]:
    """First cell -> cells, for every line of a `│ a │ b │` table."""
    out = {}
    for line in table.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│ ").split(" │ ")]
            out[cells[0]] = cells
    return out


def test_ls_lists_every_socket_with_who_manages_it(org: dict[str, Any]) -> None:
    code, out, err = run(org, "ls")
    assert code == 0, err
    assert all(len(line) <= 120 for line in out.splitlines()), out
    table = rows(out)
    assert table["NAME"] == ["NAME", "SOCKET ID", "DNS NAME", "PORT(S)", "TYPE", "DESCRIPTION",
                             "MANAGED"]
    assert sorted(table) == ["NAME", "bastion", "grafana", "intranet", "kept", "legacy", "mqtt",
                             "orders-db", "web"]
    live = org["client"].get_socket("mqtt")
    assert table["mqtt"][2:5] == [live["dnsname"], str(live["socket_tcp_ports"][0]), "tls"]
    assert table["intranet"][4] == "https"
    assert (table["web"][6], table["kept"][6], table["legacy"][6]) == (
        "unmanaged", "this", "other (ci)")

    code, out, err = run(org, "ls", "--format", "json")
    assert code == 0, err
    by_name = {r["name"]: r for r in json.loads(out)}
    assert by_name["web"]["socket_id"] == org["ids"]["web"]
    assert by_name["web"]["policies"] == ["engineers", "ci-only"]
    assert by_name["legacy"]["managed"] == "other" and by_name["legacy"]["owner"] == "ci"
    assert "state" not in by_name["web"]

    code, out, _ = run(org, "ls", "--wide")
    assert org["ids"]["orders-db"] in out  # whole ids only with --wide
    code, out, _ = run(org, "ls")
    assert org["ids"]["orders-db"] not in out and org["ids"]["orders-db"][:8] + "…" in out


def test_show_prints_one_socket_and_the_policies_that_apply(org: dict[str, Any]) -> None:
    code, out, err = run(org, "show", "web")
    assert code == 0, err
    assert out.startswith("socket web\n")
    assert f"SOCKET ID    {org['ids']['web']}" in out
    assert "DNS NAME     web-local.border0.io" in out and "LABELS       team=web" in out
    policies = rows(out)
    assert policies["engineers"][1:4] == ["attached", "http, ssh", "domain:example.com"]
    assert policies["ci-only"][1] == "attached"
    assert policies["org-default"][1] == "org-wide"
    assert "on-call" not in policies

    code, out, err = run(org, "show", "orders-db", "--format", "json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["type"] == "database" and shown["upstream_type"] == "postgres"
    assert [p["name"] for p in shown["policies"]] == ["on-call", "org-default"]
    assert "pw-orders" not in out  # the upstream password is never shown

    code, out, err = run(org, "show", "nope")
    assert code == 1 and out == ""
    assert err == ("error: no socket or connector named 'nope' in border0 (list them with ls "
                   "and ls --connectors)\n")
    code, out, err = run(org, "show", "web", "-o", "markdown")  # every -o format applies
    assert code == 0 and "| DNS NAME | web-local.border0.io |" in out, err
    code, _, err = run(org, "show", "plan.bin")  # a file name: the saved-plan branch answers
    assert code == 1 and err.startswith("error: plan.bin")


def test_policies_lists_each_policy_with_its_sockets(org: dict[str, Any]) -> None:
    code, out, err = run(org, "policies")
    assert code == 0, err
    assert all(len(line) <= 120 for line in out.splitlines()), out
    table = rows(out)
    assert table["NAME"] == ["NAME", "POLICY ID", "ACTIONS", "WHO", "SOCKETS", "MANAGED",
                             "DESCRIPTION"]
    assert table["engineers"][2:6] == ["http, ssh", "domain:example.com", "bastion, web",
                                       "unmanaged"]
    assert table["devs-v2"][2] == "http, tls"  # v2: the allowed permissions
    assert table["org-default"][4] == "(all: org-wide)"
    assert table["ci-only"][5] == "other (ci)"
    code, out, err = run(org, "policies", "--format", "json")
    by_name = {p["name"]: p for p in json.loads(out)}
    assert by_name["devs-v2"]["sockets"] == ["intranet", "mqtt"]
    assert by_name["org-default"]["org_wide"] is True


def test_ls_with_manifests_shows_in_sync_drifted_and_not_declared(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    copy_examples(examples, "ci", "kubernetes")
    api = ["--api", "local", "--state", str(tmp_path / "local.db")]
    env = ["--env-file", str(examples / "demo.env")]
    code, _, err = cli(["apply", str(examples), *api, *env, "--auto-approve"], cwd=tmp_path)
    assert code == 0, err

    code, out, err = cli(["ls", *api, "--manifests", str(examples), *env], cwd=tmp_path)
    assert code == 0, err
    table = rows(out)
    assert table["NAME"][-2:] == ["MANAGED", "STATE"]
    assert {cells[-1] for name, cells in table.items() if name != "NAME"} == {"in-sync"}

    web = examples / "sockets" / "web.yaml"
    web.write_text(web.read_text().replace("description: Team web app", "description: edited"))
    (examples / "sockets" / "mqtt.yaml").unlink()
    code, out, err = cli(["ls", *api, "--manifests", str(examples)], cwd=tmp_path)  # no env
    assert code == 0, err
    table = rows(out)
    assert (table["web"][-1], table["mqtt"][-1], table["orders-db"][-1]) == (
        "drifted", "not in manifests", "in-sync")  # secrets are not compared without env
    # an ignored field is not drift for ls either (docs/ignore-and-confirm.md)
    web.write_text(web.read_text().replace(
        "  description: edited\n", "  description: edited\n  ignoreFields: [/spec/description]\n"))
    code, out, err = cli(["ls", *api, "--manifests", str(examples)], cwd=tmp_path)
    assert code == 0, err
    assert rows(out)["web"][-1] == "in-sync"
    code, out, err = cli(["ls", *api, "--manifests", str(examples), "--format", "json",
                          "--instance", "other"], cwd=tmp_path)
    assert code == 0, err
    assert {r["state"] for r in json.loads(out)} == {"conflict", "not in manifests"}

    (examples / "broken.yaml").write_text("kind: Socket\n")
    code, out, err = cli(["ls", *api, "--manifests", str(examples)], cwd=tmp_path)
    assert code == 1 and out == "" and "error: the manifests have errors" in err
