"""The access review and saved plans as a user meets them: the real CLI in a child process against
`--api local` (the embedded emulator with a state file), on a copy of examples/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from documents import policy_doc, socket_doc, write
from helpers import REPO, cli

SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
ON_CALL = REPO / "examples" / "policies" / "on-call.yaml"
ENGINEERS = REPO / "examples" / "policies" / "engineers.yaml"
DATABASES = REPO / "examples" / "sockets" / "databases.yaml"


@pytest.fixture
def examples(tmp_path: Path) -> dict:
    """examples/ applied, except that alice is not on call yet."""
    folder = tmp_path / "config"
    for sub in ("policies", "sockets"):
        shutil.copytree(REPO / "examples" / sub, folder / sub)
    oncall = folder / "policies" / "on-call.yaml"
    oncall.write_text(ON_CALL.read_text().replace("alice@example.com, ", ""))
    p = {"dir": tmp_path, "m": str(folder), "cfg": folder,
         "args": ["--api", "local", "--state", str(tmp_path / "local.db"),
                  "--env-file", str(REPO / "examples" / "demo.env")]}
    code, _, err = run(p, "apply", p["m"], "--auto-approve")
    assert code == 0, err
    return p


def run(p: dict, *args: str) -> tuple[int, str, str]:
    code, out, err = cli([*args, *p["args"]], cwd=p["dir"])
    assert "Traceback" not in err, err
    assert "demo-not-a-real-password" not in out + err
    return code, out, err


def review_pr(p: dict) -> None:
    """The pull request under review: alice joins on-call, orders-db drops db-by-ip, and the
    engineers policy is narrowed to the office network."""
    cfg = p["cfg"]
    shutil.copy(ON_CALL, cfg / "policies" / "on-call.yaml")
    (cfg / "policies" / "engineers.yaml").write_text(
        ENGINEERS.read_text().replace('allowed_ip: [0.0.0.0/0, "::/0"]', "allowed_ip: [10.0.0.0/8]"))
    (cfg / "sockets" / "databases.yaml").write_text(
        DATABASES.read_text().replace("policies: [db-by-ip, on-call, contractors]",
                                      "policies: [on-call, contractors]", 1))


# Worked out by hand from examples/: on-call (ssh, http, database, tls) is attached to bastion
# (ssh), grafana (http), orders-db (database) and web (http); engineers (http, ssh, tls; domain
# example.com) to bastion, docs, grafana, mqtt, portal (https -> http) and web; db-by-ip
# (database; domain example.com) to orders-db and analytics-db.


def narrowed(action: str, socket: str) -> str:
    return (f"~ domain example.com: conditions narrowed for {action} on {socket} (policy "
            "engineers changed): from 0.0.0.0/0, ::/0 → from 10.0.0.0/8")


EXPECTED_TEXT = [
    "+ alice@example.com gains ssh on bastion (policy on-call changed)",
    narrowed("ssh", "bastion"),
    narrowed("http", "docs"),
    "+ alice@example.com gains http on grafana (policy on-call changed)",
    narrowed("http", "grafana"),
    narrowed("tls", "mqtt"),
    "+ alice@example.com gains database on orders-db (policy on-call changed)",
    "- domain example.com loses database on orders-db (policy db-by-ip detached)",
    narrowed("http", "portal"),
    "+ alice@example.com gains http on web (policy on-call changed)",
    narrowed("http", "web"),
]


def test_examples_access_review_in_text_json_and_markdown(examples: dict) -> None:
    p = examples
    review_pr(p)
    code, out, err = run(p, "plan", p["m"], "--detailed-exitcode")
    assert code == 2, err
    lines = out.splitlines()
    assert lines[0] == "Access changes (11): who gains or loses access"
    assert [line.strip() for line in lines[1:12]] == EXPECTED_TEXT

    code, out, _ = run(p, "plan", p["m"], "--format", "json")
    data = json.loads(out)
    jsonschema.validate(data, SCHEMA)
    got = [(a["change"], a["principal_type"], a["principal"], a["action"], a["socket"],
            [(x["name"], x["cause"]) for x in a["policies"]]) for a in data["access_changes"]]
    alice = ("email", "alice@example.com")
    domain = ("domain", "example.com")
    engineers = [("engineers", "changed")]
    assert got == [
        ("gain", *alice, "ssh", "bastion", [("on-call", "changed")]),
        ("narrowed", *domain, "ssh", "bastion", engineers),
        ("narrowed", *domain, "http", "docs", engineers),
        ("gain", *alice, "http", "grafana", [("on-call", "changed")]),
        ("narrowed", *domain, "http", "grafana", engineers),
        ("narrowed", *domain, "tls", "mqtt", engineers),
        ("gain", *alice, "database", "orders-db", [("on-call", "changed")]),
        ("loss", *domain, "database", "orders-db", [("db-by-ip", "detached")]),
        ("narrowed", *domain, "http", "portal", engineers),
        ("gain", *alice, "http", "web", [("on-call", "changed")]),
        ("narrowed", *domain, "http", "web", engineers),
    ]
    gain = data["access_changes"][0]
    assert gain["before"] is None and gain["after"] == [{
        "policy": "on-call", "where": {"allowed_ip": ["0.0.0.0/0", "::/0"]},
        "when": {"time_of_day_after": "07:00 UTC", "time_of_day_before": "19:00 UTC"}}]

    code, out, _ = run(p, "plan", p["m"], "--format", "markdown")
    head = out.split("\n\n")
    assert head[0] == "## border0-reconciler plan (instance `default`)"
    assert head[1] == "### :key: Access changes (11, 4 widening)"
    rows = head[2].splitlines()
    assert rows[0] == "| change | socket | who | access | policy | conditions |"
    assert rows[2] == ("| :heavy_plus_sign: gains | **bastion** | alice@example.com | ssh "
                       "| on-call changed | from 0.0.0.0/0, ::/0; 07:00 UTC-19:00 UTC |")
    assert rows[9] == ("| :heavy_minus_sign: loses | **orders-db** | domain example.com "
                       "| database | db-by-ip detached | from 10.0.0.0/8, 192.168.0.0/16 |")
    assert len(rows) == 2 + 11


def test_deny_access_gain_fails_a_plan_that_adds_alice(examples: dict) -> None:
    p = examples
    # losing and narrowing access passes the gate
    (p["cfg"] / "sockets" / "databases.yaml").write_text(
        DATABASES.read_text().replace("policies: [db-by-ip, on-call, contractors]",
                                      "policies: [on-call, contractors]", 1))
    code, out, err = run(p, "plan", p["m"], "--deny-access-gain", "--detailed-exitcode")
    assert code == 2, err
    assert "- domain example.com loses database on orders-db (policy db-by-ip detached)" in out

    shutil.copy(ON_CALL, p["cfg"] / "policies" / "on-call.yaml")  # alice joins on-call
    code, out, err = run(p, "plan", p["m"], "--deny-access-gain", "--out", str(p["dir"] / "f"))
    assert code == 1
    err_lines = [line for line in err.strip().splitlines() if "legacy model" not in line]
    assert [line.strip() for line in err_lines[:-1]] == [
        line for line in EXPECTED_TEXT if line.startswith("+")]
    assert err_lines[-1] == ("error: --deny-access-gain: the plan widens access 4 times "
                             "(listed above); nothing was saved or applied")
    assert not (p["dir"] / "f").exists()
    code, out, err = run(p, "apply", p["m"], "--deny-access-gain", "--auto-approve")
    assert code == 1 and "--deny-access-gain" in err and "updated" not in err
    code, _, _ = run(p, "plan", p["m"], "--detailed-exitcode")
    assert code == 2  # nothing was applied


def test_plan_out_apply_show_and_renderings_refused(examples: dict) -> None:
    p, d = examples, examples["dir"]
    review_pr(p)
    saved = d / "review.tfplan"
    code, out, err = run(p, "plan", p["m"], "--out", str(saved))
    assert code == 0, err
    assert out.startswith("Access changes (11)")  # the terminal gets the plan as text
    assert f"Saved the plan to {saved}" in err
    # a saved plan is the JSON plan plus what apply needs: tools read it as the JSON form
    data = json.loads(saved.read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["saved_plan"]["kind"] == "border0-reconciler/saved-plan"

    # show FILE renders it offline, in every format, as plan did
    code, shown, err = cli(["show", str(saved)], cwd=d)
    assert code == 0, err
    assert shown == out
    code, shown_json, _ = cli(["show", str(saved), "--format", "json"], cwd=d)
    assert "saved_plan" not in json.loads(shown_json)
    assert json.loads(shown_json)["access_changes"] == data["access_changes"]
    code, shown_md, _ = cli(["show", str(saved), "--format", "markdown"], cwd=d)
    assert shown_md.startswith("## border0-reconciler plan")

    # renderings are refused by apply, with one message, and nothing is applied
    (d / "plan.json").write_text(shown_json)
    (d / "plan.md").write_text(shown_md)
    (d / "plan.txt").write_text(shown)
    for rendering in ("plan.json", "plan.md", "plan.txt"):
        code, _, err = run(p, "apply", str(d / rendering), "--auto-approve")
        assert code == 1
        assert err.strip() == (
            f"error: {d / rendering} is a rendering of a plan (its text, JSON or Markdown "
            "output), not a saved plan or manifests: save a plan with `plan --out FILE` and "
            "apply FILE")
    code, _, err = cli(["show", str(d / "plan.json")], cwd=d)
    assert code == 1 and err.strip() == (
        f"error: {d / 'plan.json'}: a rendering of a plan, not a saved plan (read it as it is)")
    code, _, err = cli(["show", str(d / "nothing.tfplan")], cwd=d)
    assert code == 1 and err.strip() == f"error: {d / 'nothing.tfplan'}: not found"

    # apply FILE applies exactly the saved plan, without asking
    code, out, err = run(p, "apply", str(saved))
    assert code == 0, err
    assert "Apply complete: 3 actions succeeded." in err  # the summary goes with the progress
    code, _, _ = run(p, "plan", p["m"], "--detailed-exitcode")
    assert code == 0
    # and a second apply of it is stale (border0 changed since)
    code, _, err = run(p, "apply", str(saved))
    assert code == 1 and "error: the saved plan is stale" in err


def test_a_damaged_or_foreign_saved_plan_is_one_error_and_nothing_is_applied(
    examples: dict,
) -> None:
    """A saved plan cut short (an interrupted copy, a CI artifact's size limit) or damaged is
    named as such by `apply` and `show`, not read as a manifest with a YAML error, and a plan
    of another format says what to do; nothing is applied."""
    p, d = examples, examples["dir"]
    review_pr(p)
    saved = d / "review.tfplan"
    assert run(p, "plan", p["m"], "--out", str(saved))[0] == 0
    whole = saved.read_bytes()
    damaged = {"cut-early.tfplan": whole[:200], "cut-late.tfplan": whole[:-2],
               "flipped.tfplan": whole.replace(b'"changes": [', b'"changes": [[', 1)}
    for name, content in damaged.items():
        (d / name).write_bytes(content)
        wanted = f"error: {d / name}: the saved plan is damaged or cut short (not valid JSON: "
        code, _, err = run(p, "apply", str(d / name), "--auto-approve")
        assert code == 1 and err.strip().startswith(wanted), (name, err)
        assert err.strip().endswith("make it again with plan --out") and "\n" not in err.strip()
        code, out, err = cli(["show", str(d / name)], cwd=d)
        assert code == 1 and out == "" and err.strip().startswith(wanted), (name, err)
    data = json.loads(whole)
    newer = ("made by a newer border0-reconciler: apply it with that release, or plan again "
             "with this one (plan --out)")
    for version, advice in (("9", newer), ("0", "plan again (plan --out)")):
        other = d / f"format-{version}.tfplan"
        other.write_text(json.dumps({**data, "saved_plan": {**data["saved_plan"],
                                                            "format_version": version}}))
        code, _, err = run(p, "apply", str(other), "--auto-approve")
        assert code == 1 and err.strip() == (
            f"error: {other}: saved plan format {version!r} is not supported (this release "
            f"reads '1', '2', '3'): {advice}"), err
    # nothing was applied: the reviewed changes are all still to do
    assert run(p, "plan", p["m"], "--detailed-exitcode")[0] == 2


def test_old_spellings_work_with_a_deprecation_note(examples: dict) -> None:
    p, d = examples, examples["dir"]
    review_pr(p)
    code, out, err = run(p, "plan", p["m"], "--format", "markdown", "--out", str(d / "plan.md"),
                         "--save", str(d / "saved.json"))
    assert code == 0, err
    assert "warning: deprecated: --save" in err
    assert (d / "plan.md").read_text().startswith("## border0-reconciler plan")
    assert out.startswith("Access changes (11)")  # the terminal gets text, as before

    code, out, err = run(p, "plan", p["m"], "--format", "markdown", "--out", str(d / "p2.md"))
    assert code == 0
    assert "warning: deprecated: --out" in err and "Saved the plan" not in err
    assert (d / "p2.md").read_text().startswith("## border0-reconciler plan")

    code, out, err = run(p, "apply", str(d / "saved.json"))
    assert code == 0, err
    assert "Apply complete: 3 actions succeeded." in err  # the summary goes with the progress


def test_deny_access_gain_refuses_v2_permissions_added_as_empty_objects(tmp_path: Path) -> None:
    """`sftp: {}` grants sftp (border0 reads a permission's settings as pointers): adding it
    and `tcp_forwarding: {}` to a v2 policy widens access, so --deny-access-gain refuses it;
    dropping them again passes."""
    p = {"dir": tmp_path, "m": str(tmp_path / "m"),
         "args": ["--api", "local", "--state", str(tmp_path / "local.db")]}

    def manifests(ssh: dict) -> None:
        policy = policy_doc("devs")
        policy["spec"]["policyData"] = {"version": "v2", "permissions": {"ssh": ssh},
                                        "condition": {"who": {"email": ["dev@example.com"]}}}
        write(tmp_path / "m", [policy, socket_doc("box", "ssh", policies=["devs"])])

    manifests({"shell": {}})
    code, _, err = run(p, "apply", p["m"], "--auto-approve")
    assert code == 0, err
    manifests({"shell": {}, "sftp": {}, "tcp_forwarding": {}})
    code, out, err = run(p, "plan", p["m"], "--deny-access-gain")
    assert code == 1
    assert ("~ dev@example.com: conditions widened for ssh on box (policy devs changed: adds "
            "sftp, tcp_forwarding)") in err
    assert "the plan widens access 1 time" in err
    code, out, err = run(p, "apply", p["m"], "--deny-access-gain", "--auto-approve")
    assert code == 1 and "--deny-access-gain" in err and "updated" not in err
    code, out, _ = run(p, "plan", p["m"], "--format", "json")
    assert [(a["change"], a["policies"]) for a in json.loads(out)["access_changes"]] == [
        ("widened", [{"name": "devs", "cause": "changed: adds sftp, tcp_forwarding"}])]
    manifests({"shell": {}})
    code, out, err = run(p, "plan", p["m"], "--deny-access-gain", "--detailed-exitcode")
    assert code == 0, err  # nothing was applied: border0 still grants shell only
    manifests({"shell": {}, "sftp": {}, "tcp_forwarding": {}})
    code, _, err = run(p, "apply", p["m"], "--auto-approve")
    assert code == 0, err
    manifests({"shell": {}})  # narrowing passes the gate
    code, out, err = run(p, "plan", p["m"], "--deny-access-gain", "--detailed-exitcode")
    assert code == 2, err
    assert ("~ dev@example.com: conditions narrowed for ssh on box (policy devs changed: drops "
            "sftp, tcp_forwarding)") in out
