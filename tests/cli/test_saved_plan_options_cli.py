"""A saved plan is applied with the options it was planned with (Terraform's rule), and what
`apply FILE` refuses it refuses in one line naming the real cause: the real CLI against the
twin over HTTP, on real manifest files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from documents import SECRET, base_docs, write
from helpers import applied_project, cli, edit_by_hand


@pytest.fixture
def project(tmp_path: Path, emulator) -> dict:
    """base_docs() applied to the twin."""
    return applied_project(tmp_path, emulator)


def run(p: dict, *args: str, input: str | None = None) -> tuple[int, str, str]:
    code, out, err = cli([*args, *p["args"]], cwd=p["dir"], input=input)
    assert "Traceback" not in err, err
    assert SECRET not in out + err
    return code, out, err


def _labels(p: dict) -> list[str]:
    docs = base_docs()
    docs[1]["metadata"]["labels"] = {"team": "web2"}
    write(p["m"], docs)
    return ["--labels", "authoritative"]


def _no_policies(p: dict) -> list[str]:
    docs = base_docs()
    docs[1]["spec"]["description"] = "v2"
    write(p["m"], docs)
    return ["--no-policies"]


def _allow_replace(p: dict) -> list[str]:
    docs = base_docs()
    docs[1]["spec"]["protected"] = {"username": "viewer", "password": {"env": "DB_PASSWORD"}}
    write(p["m"], docs)
    return ["--allow-replace"]


def _refresh(p: dict) -> list[str]:
    """A typed upstream's port edited in the portal, the socket's tags left alone: only a full
    refresh reads it (tests/border0/test_full_refresh.py)."""
    docs = base_docs()
    docs[1]["spec"]["upstream"] = {
        "serviceType": "http", "httpServiceConfiguration": {
            "httpServiceType": "standard", "standardHttpServiceConfiguration": {
                "hostname": "web.internal", "port": 8080, "scheme": "http",
                "hostHeader": "web.internal"}}}
    write(p["m"], docs)
    assert run(p, "apply", str(p["m"]), "--auto-approve")[0] == 0
    client = p["client"]
    live = client.find_socket("web")
    config = client.get_upstream_configuration(live["socket_id"])
    config["http_service_configuration"]["standard_http_service_configuration"]["port"] = 9999
    edit_by_hand(client, live, upstream_configuration=config)
    assert client.find_socket("web")["tags"] == live["tags"]
    assert run(p, "plan", str(p["m"]), "--detailed-exitcode")[0] == 0  # a fast plan misses it
    return ["--refresh", "full"]


def _secret_root(p: dict) -> list[str]:
    """A secret file outside the manifests' folder, readable only under --secret-root."""
    secrets = p["dir"] / "secrets"
    secrets.mkdir()
    (secrets / "pw").write_text("another-password\n")
    docs = base_docs()
    docs[2]["spec"]["upstream"]["password"] = {"file": str(secrets / "pw")}
    write(p["m"], docs)
    return ["--secret-root", str(secrets)]


AS_SAVED = ("a saved plan is applied with the options it was planned with: leave the option "
            "out, or plan again with it (plan --out FILE)")

SHAPING: dict[str, Callable[[dict], list[str]]] = {
    "labels": _labels, "no-policies": _no_policies, "allow-replace": _allow_replace,
    "refresh": _refresh, "secret-root": _secret_root,
}


@pytest.mark.parametrize("option", sorted(SHAPING))
def test_apply_file_uses_the_options_the_plan_was_saved_with(project: dict, option: str) -> None:
    p = project
    flags = SHAPING[option](p)
    saved = str(p["dir"] / "p.json")
    code, shown, err = run(p, "plan", str(p["m"]), *flags, "--out", saved)
    assert code == 0 and "Plan: 0 to create, 0 to update, 0 to delete" not in shown, err
    code, _, err = run(p, "apply", saved)  # the options are not repeated
    assert code == 0 and "Apply complete" in err, err
    code, out, err = run(p, "plan", str(p["m"]), *flags, "--detailed-exitcode")
    assert code == 0, out + err  # what was reviewed was applied
    # repeating an option with the value it was saved with is fine; the plan is stale now
    code, _, err = run(p, "apply", saved, *flags)
    assert code == 1 and "the saved plan is stale" in err, err


def test_apply_file_refuses_an_option_given_with_another_value(project: dict) -> None:
    p = project
    saved = str(p["dir"] / "p.json")
    assert run(p, "plan", str(p["m"]), *_labels(p), "--out", saved)[0] == 0
    for given, head in (
        (["--labels", "merge"], "--labels merge: the plan was saved with --labels authoritative"),
        (["--no-policies"], "--no-policies: the plan was saved without it"),
        (["--instance", "other"], "--instance other: the plan was saved with --instance default"),
    ):
        line = f"error: {head}; {AS_SAVED}"
        code, _, err = run(p, "apply", saved, *given)
        assert code == 1 and err.strip() == line, err
    code, _, err = run(p, "apply", saved, "--labels", "authoritative")
    assert code == 0 and "Apply complete: 1 action succeeded" in err, err


def test_a_confirmation_is_part_of_the_reviewed_plan(project: dict) -> None:
    p = project
    docs = base_docs()
    docs[3]["metadata"]["annotations"] = {"border0-reconciler/confirm-delete": "true"}
    write(p["m"], docs)
    assert run(p, "apply", str(p["m"]), "--auto-approve")[0] == 0
    write(p["m"], docs[:3])  # box goes: its deletion waits for a confirmation
    saved = str(p["dir"] / "p.json")
    assert run(p, "plan", str(p["m"]), "--out", saved)[0] == 0
    code, _, err = run(p, "apply", saved, "--confirm-delete", "box")
    assert code == 1 and "a secret changed" not in err
    assert err.strip() == (
        f"error: --confirm-delete box: the plan was saved without it; {AS_SAVED}"), err

    # reviewed with the confirmation, it is applied as reviewed, without repeating it
    assert run(p, "plan", str(p["m"]), "--confirm-delete", "box", "--out", saved)[0] == 0
    code, _, err = run(p, "apply", saved)
    assert code == 0 and "Apply complete: 1 action succeeded" in err, err
    code, out, _ = run(p, "ls", "-o", "json")
    assert "box" not in [r["name"] for r in json.loads(out)]


def test_plan_from_stdin_is_not_saved(project: dict) -> None:
    p = project
    text = (p["m"] / "socket-box.yaml").read_text().replace("a box", "a new box")
    saved = p["dir"] / "p.json"
    code, out, err = run(p, "plan", "-", "--out", str(saved), input=text)
    assert code == 1 and out == "" and not saved.exists()
    assert err.strip() == (
        "error: --out: manifests read from stdin (-) cannot be saved as a plan, as apply "
        "could not read them again; plan their files or folder with --out"), err


def test_apply_of_a_saved_plan_refuses_out(project: dict) -> None:
    p = project
    docs = base_docs()
    docs[1]["spec"]["description"] = "v2"
    write(p["m"], docs)
    saved, again = p["dir"] / "p.json", p["dir"] / "q.json"
    assert run(p, "plan", str(p["m"]), "--out", str(saved))[0] == 0
    code, out, err = run(p, "apply", str(saved), "--out", str(again))
    assert code == 1 and out == "" and not again.exists()
    assert err.strip() == (
        f"error: --out {again}: {saved} is a saved plan already; apply it without --out "
        "(copy the file to keep it)"), err
    code, _, err = run(p, "apply", str(saved))  # nothing was applied: it is not stale
    assert code == 0 and "Apply complete: 1 action succeeded" in err, err


def connector_doc(name: str, description: str) -> dict:
    return {"apiVersion": "border0-reconciler/v1", "kind": "Connector",
            "metadata": {"name": name}, "spec": {"description": description}}


def test_a_connector_changed_in_border0_makes_a_saved_plan_stale(project: dict) -> None:
    """The connectors are border0's state the plan was made from, as the sockets and policies
    are: one edited in the portal since makes the saved plan stale, said so (not "a secret
    changed"), and nothing is applied."""
    p = project
    docs = [*base_docs(), connector_doc("edge", "rack A"), connector_doc("edge-b", "rack B")]
    write(p["m"], docs)
    assert run(p, "apply", str(p["m"]), "--auto-approve")[0] == 0
    docs[-2] = connector_doc("edge", "rack A, moved")
    write(p["m"], docs)
    saved = str(p["dir"] / "p.json")
    code, shown, err = run(p, "plan", str(p["m"]), "--out", saved)
    assert code == 0 and "Plan: 0 to create, 1 to update" in shown, err
    client = p["client"]
    other = client.find_connector("edge-b")  # edited by hand, its ownership marker kept
    client.update_connector(other["connector_id"], {
        "name": "edge-b", "description": other["description"].replace("rack B", "rack C")})
    code, _, err = run(p, "apply", saved)
    assert code == 1 and err.strip().splitlines()[-1] == (
        "error: the saved plan is stale: border0 changed since it was made; run plan --out "
        "again"), err
    assert "a secret changed" not in err
    assert client.find_connector("edge")["description"].startswith("rack A [")  # not applied


def test_a_plan_saved_by_the_previous_release_is_applied_with_its_options(
    project: dict,
) -> None:
    """Format "2" recorded only the instance and the mass-delete guard: the other options are
    this command line's, and a plan they change is refused naming them."""
    p = project
    saved = p["dir"] / "p.json"
    assert run(p, "plan", str(p["m"]), *_labels(p), "--out", str(saved))[0] == 0
    data = json.loads(saved.read_text())
    data["saved_plan"].pop("options")
    data["saved_plan"]["format_version"] = "2"
    saved.write_text(json.dumps(data))
    code, _, err = run(p, "apply", str(saved), "--instance", "other")
    assert code == 1 and "--instance other: the plan was saved with --instance default" in err
    code, _, err = run(p, "apply", str(saved))
    assert code == 1 and "error: the manifests changed since the plan was saved" in err
    assert ("or it was planned with an option not given now (a plan saved by an older "
            "release records only --instance, --max-delete and --allow-mass-delete: repeat "
            "the others); run plan --out again") in err, err
    code, _, err = run(p, "apply", str(saved), "--labels", "authoritative")
    assert code == 0 and "Apply complete: 1 action succeeded" in err, err
