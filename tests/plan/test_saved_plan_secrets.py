"""A saved plan gives no way to test password guesses offline (issue 12, item 6).

It stored a salt beside an HMAC over the desired state, which held fast SHA-256 digests of the
secrets: a word list recovered `Summer2024!` in 2,001 guesses and 0.2 s. Here the attacker holds
the file and the manifests (not the env file, not border0) and recomputes everything the file
lets one recompute, once per guess: no guess may stand out. Secrets are compared at apply time
instead: a changed secret that changes the plan is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from documents import base_docs, write
from helpers import cli

import reconciler.plan.saved as saved_plan
from reconciler.manifests.loader import load

PASSWORD = "Summer2024!"
WORDS = [f"{season}{year}{mark}" for season in ("Spring", "Summer", "Autumn", "Winter")
         for year in range(2015, 2026) for mark in ("", "!", "?", "#")] + ["hunter2", "s3cret"]


def _run(emulator, folder: Path, env_file: Path, *args: str) -> tuple[int, str, str]:
    token_file = folder.parent / "token"
    token_file.write_text(emulator.token)
    code, out, err = cli([*args, "--api", emulator.url, "--token-file", str(token_file),
                          "--env-file", str(env_file)], cwd=folder.parent)
    assert "Traceback" not in err and PASSWORD not in out + err
    return code, out, err


def _digests(value: str) -> set[str]:
    data = value.encode()
    return {hashlib.sha256(data).hexdigest(), hashlib.sha1(data).hexdigest(),
            hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest()}


def test_a_word_list_cannot_confirm_the_password_from_a_saved_plan(emulator, tmp_path: Path):
    assert PASSWORD in WORDS
    folder = write(tmp_path / "manifests", base_docs())
    env_file = tmp_path / "demo.env"
    env_file.write_text(f"DB_PASSWORD={PASSWORD}\n")
    assert _run(emulator, folder, env_file, "apply", str(folder), "--auto-approve")[0] == 0
    docs = base_docs()
    docs[2]["spec"]["description"] = "v2"  # a change to the socket that holds the password
    write(folder, docs)
    saved_file = tmp_path / "plan.json"
    assert _run(emulator, folder, env_file, "plan", str(folder), "--save", str(saved_file))[0] == 0

    text = saved_file.read_text()
    for digest in _digests(PASSWORD):
        assert digest not in text and digest.upper() not in text
    saved = saved_plan.read(saved_file)
    # border0 does not give the password back (issue 11): its state holds only a salted
    # fingerprint, which the file does not contain; the file is all the attacker has.

    confirmed = []
    for guess in WORDS:
        desired = load([folder], env={"DB_PASSWORD": guess}).desired
        blob = json.dumps(saved_plan._canonical(desired), sort_keys=True, default=str).encode()
        tests = [
            saved_plan.desired_fingerprint(desired, saved.salt) == saved.desired_fingerprint,
            any(d in text for d in _digests(guess)),
            hmac.new(saved.salt.encode(), guess.encode(), hashlib.sha256).hexdigest() in text,
            hashlib.sha256(blob).hexdigest() in text,
        ]
        confirmed.append((guess, tuple(tests)))
    outcomes = {tests for _, tests in confirmed}
    assert len(outcomes) == 1, [g for g, t in confirmed if t != confirmed[-1][1]]  # all alike


def test_a_secret_changed_after_saving_is_refused_when_it_changes_the_plan(emulator, tmp_path):
    folder = write(tmp_path / "manifests", base_docs())
    env_file = tmp_path / "demo.env"
    env_file.write_text(f"DB_PASSWORD={PASSWORD}\n")
    assert _run(emulator, folder, env_file, "apply", str(folder), "--auto-approve")[0] == 0
    docs = base_docs()
    docs[0]["spec"]["description"] = "ops v2"
    write(folder, docs)
    saved_file = tmp_path / "plan.json"
    assert _run(emulator, folder, env_file, "plan", str(folder), "--save", str(saved_file))[0] == 0

    env_file.write_text("DB_PASSWORD=another-password\n")  # the plan now also updates db
    code, _, err = _run(emulator, folder, env_file, "apply", str(saved_file))
    assert code == 1 and "error: the plan is not the one saved: a secret changed" in err
    assert "Apply complete" not in err
    assert emulator.client().find_policy("ops")["description"].startswith("ops team")

    env_file.write_text(f"DB_PASSWORD={PASSWORD}\n")  # as reviewed: applied
    code, _, err = _run(emulator, folder, env_file, "apply", str(saved_file))
    assert code == 0 and "Apply complete: 1 action succeeded." in err, err
    assert emulator.client().find_policy("ops")["description"].startswith("ops v2")
