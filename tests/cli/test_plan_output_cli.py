"""What `plan` (text, Markdown, JSON) and `show NAME` tell a user, as the real CLI prints them
against the emulator from manifests on disk: nothing left out, nothing a table can break."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml
from documents import ENV, socket_doc, write
from helpers import REPO, cli

SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())


def run(emu: Any, cwd: Path, *args: str) -> tuple[int, str, str]:
    code, out, err = cli(list(args), env={"BORDER0_API": emu.url, "BORDER0_TOKEN": emu.token,
                                          **ENV}, cwd=cwd)
    assert "Traceback" not in err, err
    return code, out, err


def plan_json(emu: Any, cwd: Path, folder: Path, *flags: str) -> dict:
    _, out, _ = run(emu, cwd, "plan", str(folder), "-o", "json", *flags)
    data = json.loads(out)  # one document, a refused plan's too
    jsonschema.validate(data, SCHEMA)
    return data


def test_a_refused_plan_in_a_machine_format_is_one_document(emulator, tmp_path) -> None:
    """`plan -o json` in CI, refused for a conflict: stdout is the plan (with its conflict)
    and nothing after it, so `jq` reads it; the error is on stderr, exit code 1."""
    api = httpx.Client(base_url=emulator.url,
                       headers={"Authorization": f"Bearer {emulator.token}"})
    assert api.post("/socket", json={"name": "web", "socket_type": "http"}).status_code == 200
    write(tmp_path / "m", [socket_doc("web")])  # someone else's socket: a conflict

    code, out, err = run(emulator, tmp_path, "plan", str(tmp_path / "m"), "-o", "json")
    assert code == 1
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    assert data["applicable"] is False and [c["message"] for c in data["conflicts"]]
    assert err.strip().splitlines()[-1].startswith("error: ")

    code, out, _ = run(emulator, tmp_path, "plan", str(tmp_path / "m"), "-o", "yaml")
    documents = list(yaml.safe_load_all(out))
    assert code == 1 and len(documents) == 1 and documents[0]["applicable"] is False

    # a failure before any plan was made still prints the error document
    (tmp_path / "m" / "broken.yaml").write_text("kind: Socket\nmetadata: [\n")
    code, out, _ = run(emulator, tmp_path, "plan", str(tmp_path / "m"), "-o", "json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_show_lists_a_policy_whose_tag_rules_select_the_socket(emulator, tmp_path) -> None:
    api = httpx.Client(base_url=emulator.url,
                       headers={"Authorization": f"Bearer {emulator.token}"})
    for path, body in (
        ("/socket", {"name": "web", "socket_type": "http", "tags": {"env": "prod"}}),
        ("/socket", {"name": "dev", "socket_type": "http", "tags": {"env": "dev"}}),
        ("/policies", {"name": "prod-http", "tag_rules": [{"env": "prod"}], "policy_data": {
            "version": "v1", "action": ["http"],
            "condition": {"who": {"email": ["alice@example.com"]}}}}),
    ):
        assert api.post(path, json=body).status_code == 200

    code, out, err = run(emulator, tmp_path, "show", "web")
    assert code == 0, err
    assert "nobody can use" not in out
    row = next(line for line in out.splitlines() if "prod-http" in line)
    assert "tag_rules" in row and "alice@example.com" in row
    code, out, _ = run(emulator, tmp_path, "show", "web", "-o", "json")
    assert [(p["name"], p["via"]) for p in json.loads(out)["policies"]] == [
        ("prod-http", "tag_rules")]
    code, out, _ = run(emulator, tmp_path, "show", "dev")  # its tags match no rule
    assert "no policy applies: nobody can use this socket" in out


def test_markdown_escapes_a_pipe_in_a_label_key_and_a_path(emulator, tmp_path) -> None:
    m = tmp_path / "a|b"
    write(m, [socket_doc("web", labels={"team|owner": "a"})])
    assert run(emulator, tmp_path, "apply", str(m), "--auto-approve")[0] == 0
    write(m, [socket_doc("web", labels={"team|owner": "b|c"}), socket_doc("api")])

    _, md, _ = run(emulator, tmp_path, "plan", str(m), "-o", "markdown")
    row = next(line for line in md.splitlines() if "labels.team" in line)
    assert row.count("|") == 4, row  # 3 cells: the key's and the value's `|` are escaped
    assert "<code>labels.team&#124;owner</code>" in row and "b&#124;c" in row
    # the source of a change without diffs and every path: <code>, never a backtick span
    assert "`" not in md.split("### Changes", 1)[1], md


def test_a_suspended_connector_not_in_border0_is_listed(emulator, tmp_path) -> None:
    m = tmp_path / "m"
    m.mkdir()
    (m / "connector-edge.yaml").write_text(yaml.safe_dump({
        "apiVersion": "border0-reconciler/v1", "kind": "Connector",
        "metadata": {"name": "edge", "annotations": {"border0-reconciler/suspend": "true"}},
        "spec": {"description": "edge hosts"}}))

    code, text, err = run(emulator, tmp_path, "plan", str(m))
    assert code == 0, err
    assert "  = connector edge (" in text and "not in border0)" in text
    assert "except 1 suspended object left as it is" in text
    data = plan_json(emulator, tmp_path, m)
    assert [(s["kind"], s["name"], s["in_border0"], s["differs"]) for s in data["suspended"]] \
        == [("connector", "edge", False, True)]
    _, md, _ = run(emulator, tmp_path, "plan", str(m), "-o", "markdown")
    assert "Suspended (1)" in md and "connector edge" in md


def test_markdown_and_json_say_a_blocked_change_cannot_be_applied(emulator, tmp_path) -> None:
    m = tmp_path / "m"
    write(m, [socket_doc("box", "ssh")])
    assert run(emulator, tmp_path, "apply", str(m), "--auto-approve")[0] == 0
    write(m, [socket_doc("box", "tls")])  # a replace, without --allow-replace

    code, text, _ = run(emulator, tmp_path, "plan", str(m))
    assert code == 1 and "blocked: socket box needs a replace" in text
    code, md, _ = run(emulator, tmp_path, "plan", str(m), "-o", "markdown")
    assert "### :no_entry: Blocked (1): the plan cannot be applied as it is" in md
    assert md.count("socket box needs a replace") == 2, md  # the list and the change's block
    assert "<b>box</b> — type changed: ssh → tls" in md and "— <b>blocked</b>" in md
    data = plan_json(emulator, tmp_path, m)
    assert data["applicable"] is False and data["changes"][0]["blocked"]

    data = plan_json(emulator, tmp_path, m, "--allow-replace")
    assert data["applicable"] is True and "blocked" not in data["changes"][0]
    _, md, _ = run(emulator, tmp_path, "plan", str(m), "-o", "markdown", "--allow-replace")
    assert "Blocked" not in md and "blocked" not in md
