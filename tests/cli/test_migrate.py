"""`migrate`: the legacy examples, applied to the twin, then migrated (a copy, with the real
CLI): the typed form is written with every comment kept, the migrated folder plans no change,
a second migrate changes nothing; --check/--diff write nothing; bad input is one error line."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path

import yaml
from helpers import REPO, cli, copy_examples

from reconciler.manifests.files import read_env_file
from reconciler.manifests.loader import load
from reconciler.reconcile import ReconcileOptions, reconcile
from reconciler.secrets import FINGERPRINT_KEY_ENV

#: examples/sockets: what migrate rewrites, and what it leaves (the typed form needs what the
#: legacy document does not say).
MIGRATED = {"bastion", "grafana", "mqtt", "portal", "web"}
LEFT = {"orders-db": "username is read from env/file", "analytics-db":
        "username is read from env/file", "docs": "httpserverDir is needed"}



def texts(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.yaml"))}


def comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


def spec_of(folder: Path, rel: str, name: str) -> dict:
    docs = yaml.safe_load_all((folder / rel).read_text())
    return next(d for d in docs if d and d["metadata"]["name"] == name)["spec"]


def test_migrated_examples_plan_no_change_and_keep_their_comments(tmp_path, emulator,
                                                                  shared_key):
    legacy = tmp_path / "legacy"
    copy_examples(legacy)
    env_file = legacy / "demo.env"
    applied = reconcile([legacy], emulator.client(),
                        ReconcileOptions(env=read_env_file(str(env_file))))
    assert applied.ok, applied.error
    migrated = tmp_path / "migrated"
    shutil.copytree(legacy, migrated)  # with the token files the apply wrote

    code, out, err = cli(["migrate", str(migrated)])
    assert code == 0 and "Traceback" not in err, (out, err)
    assert f"Migrated {len(MIGRATED)} sockets in {len(MIGRATED)} files; 3 left" in out
    for name, why in LEFT.items():
        assert any(f"left in the legacy form: {name}: " in line and why in line
                   and ".yaml:" in line for line in out.splitlines()), (name, out)

    before, after = texts(legacy), texts(migrated)
    for rel, text in before.items():
        assert comments(after[rel]) == comments(text), rel  # every comment, in its order
    web = spec_of(migrated, "sockets/web.yaml", "web")
    assert web["upstream"]["httpServiceConfiguration"]["standardHttpServiceConfiguration"] == {
        "hostname": "127.0.0.1", "port": 8080, "scheme": "http", "hostHeader": "127.0.0.1"}
    assert web["connector"] == {"host": "127.0.0.1", "port": 8080}  # still the legacy mode
    portal = spec_of(migrated, "sockets/portal.yaml", "portal")["upstream"]
    assert portal["httpServiceConfiguration"]["standardHttpServiceConfiguration"][
        "hostHeader"] == "portal.internal"
    assert list(spec_of(migrated, "sockets/grafana.yaml", "grafana")) == [  # key order kept
        "type", "description", "upstream", "protected", "policies", "connector"]
    assert after["sockets/databases.yaml"] == before["sockets/databases.yaml"]

    api = ["--api", emulator.url, "--env-file", str(env_file)]
    token = {"BORDER0_ADMIN_TOKEN": emulator.token, FINGERPRINT_KEY_ENV: shared_key}
    code, out, err = cli(["validate", str(migrated), "--env-file", str(env_file)])
    assert code == 0, out + err
    code, out, err = cli(["plan", str(migrated), *api, "--detailed-exitcode"], env=token)
    assert code == 0 and "No changes." in out, (out, err)

    code, out, err = cli(["migrate", str(migrated)])
    assert (code, out.splitlines()[-1]) == (0, ("Nothing to migrate; 3 sockets left in the "
                                                "legacy form.")), out + err
    assert texts(migrated) == after


def test_check_and_diff_write_nothing_and_connector_moves_to_the_connector_model(tmp_path):
    folder = tmp_path / "m"
    copy_examples(folder)
    before = texts(folder)
    code, out, _ = cli(["migrate", str(folder), "--check"])
    assert code == 1 and f"would migrate {folder / 'sockets' / 'web.yaml'}: web" in out
    code, out, _ = cli(["migrate", str(folder), "--check", "-o", "json"])
    report = json.loads(out)
    assert code == 1 and report["written"] is False
    assert {s for f in report["migrated"] for s in f["sockets"]} == MIGRATED
    assert {(e["socket"], e["line"]) for e in report["left_in_the_legacy_form"]} == {
        ("orders-db", 3), ("analytics-db", 21), ("docs", 3)}
    code, out, _ = cli(["migrate", str(folder / "sockets" / "mqtt.yaml"), "--diff"])
    assert code == 1
    assert "+    tlsServiceConfiguration:" in out and "+        port: 1883" in out
    assert texts(folder) == before

    code, out, err = cli(["migrate", str(folder), "--connector", "edge"])
    assert code == 0, out + err
    bastion = spec_of(folder, "sockets/bastion.yaml", "bastion")
    assert "connector" not in bastion and bastion["connectors"] == ["edge"]
    assert bastion["upstream"]["sshServiceConfiguration"]["sshServiceType"] == (
        "connector_built_in_ssh_service")
    code, out, err = cli(["validate", str(folder), "--env-file", str(folder / "demo.env")])
    assert code == 0, out + err


def test_bad_input_is_one_error_line_and_nothing_is_written(tmp_path):
    folder = tmp_path / "m"
    (folder / "a").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "sockets" / "web.yaml", folder / "a" / "web.yaml")
    (folder / "b.yaml").write_text("kind: Socket\nspec: [unclosed\n")
    before = texts(folder)
    code, out, err = cli(["migrate", str(folder)])
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        (f"error: {folder / 'b.yaml'}:3:1: not valid YAML: expected ',' or ']', but got "
        "'<stream end>'; nothing was migrated")]
    assert texts(folder) == before
    (folder / "b.yaml").write_text("kind: Socket\nmetadata: {name: x}\nspec: {type: http, "
                                   "upstream: foo}\n---\n- not a document of ours\n")
    code, out, err = cli(["migrate", str(folder)])
    assert (code, err) == (0, "") and out.splitlines()[-2:] == [
        (f"{folder / 'b.yaml'}:1: left in the legacy form: x: spec.upstream or spec.connector "
        "is not a map: run validate"), ("Migrated 1 socket in 1 file; 1 left in the legacy form "
        "(docs/migration.md).")]
    code, out, err = cli(["migrate", str(tmp_path / "missing")])
    assert (code, err.splitlines()) == (1, [
        f"error: {tmp_path / 'missing'}: no such file or directory; nothing was migrated"])


STYLED = """---
# the web app
apiVersion: border0-reconciler/v1
kind: Socket
metadata:
  name: web   # its name
spec:
  type: http
  policies:
  - engineers
  - "on-call"
  upstream:
    type: https
  connector: {host: 127.0.0.1, port: 8443}
---
apiVersion: border0-reconciler/v1
kind: Policy
metadata: {name: engineers}
spec:
  policyData: {version: v1, action: [http]}
"""


def test_only_the_upstream_lines_change_in_the_files_own_style(tmp_path):
    """A leading `---`, lists flush under their key, quotes, flow maps and a second document
    come back as written; the one legacy line is replaced by the typed block."""
    path = tmp_path / "web.yaml"
    path.write_text(STYLED)
    code, out, err = cli(["migrate", str(path)])
    assert code == 0, out + err
    after = path.read_text()
    removed = [ln[2:] for ln in difflib.ndiff(STYLED.splitlines(), after.splitlines())
               if ln.startswith("- ")]
    assert removed == ["    type: https"]
    assert yaml.safe_load_all(after).__next__()["spec"]["upstream"] == {
        "serviceType": "http", "httpServiceConfiguration": {
            "httpServiceType": "standard", "standardHttpServiceConfiguration": {
                "hostname": "127.0.0.1", "port": 8443, "scheme": "https",
                "hostHeader": "127.0.0.1"}}}


def test_a_typed_upstream_beyond_migrates_image_is_sent_as_border0s_configuration(tmp_path):
    """In the legacy mode, migrate's exact image of legacy fields is told to border0 as those
    fields (no upstream_configuration); a port that differs from spec.connector's, or a
    header, is more than legacy fields can say: sent as the typed configuration."""
    path = tmp_path / "web.yaml"
    path.write_text(STYLED)
    assert cli(["migrate", str(path)])[0] == 0
    migrated = path.read_text()
    same = load([path]).desired.sockets["web"]
    assert same.upstream_config is None and same.upstream_type == "https"
    path.write_text(migrated.replace("port: 8443\n", "port: 9443\n"))
    edited = load([path]).desired.sockets["web"]
    assert edited.upstream_config["http_service_configuration"][
        "standard_http_service_configuration"]["port"] == 9443


def test_a_migrated_credential_is_the_legacy_one_and_its_problem_shows_where_it_is_written(
        tmp_path):
    """A migrated database socket in the legacy mode loads as the legacy one did (the same
    SocketSpec, secrets included); an unset password variable is reported at the typed line."""
    legacy = tmp_path / "legacy" / "pg.yaml"
    legacy.parent.mkdir()
    legacy.write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata: {name: pg}\nspec:\n"
        "  type: database\n  upstream:\n    type: postgres\n    username: app\n"
        "    password: {env: PG_PW}\n  connector: {host: 127.0.0.1, port: 5432}\n")
    migrated = tmp_path / "migrated" / "pg.yaml"
    migrated.parent.mkdir()
    shutil.copy(legacy, migrated)
    assert cli(["migrate", str(migrated)])[0] == 0
    before = load([legacy], env={"PG_PW": "pw-1"}).desired.sockets["pg"]
    after = load([migrated], env={"PG_PW": "pw-1"}).desired.sockets["pg"]
    assert after == before and after.secret("upstream_password") == before.secret(
        "upstream_password")
    missing = load([migrated], env={})
    [error] = [str(d) for d in missing.diagnostics if d.severity.value == "error"]
    line = next(i for i, text in enumerate(migrated.read_text().splitlines(), 1)
                if "password:" in text)
    assert error.startswith(f"{migrated}:{line}:") and (
        "usernameAndPasswordAuthConfiguration.password: environment variable PG_PW is not set"
        in error), error


def test_a_credential_the_typed_form_has_no_place_for_is_never_dropped(tmp_path):
    """A legacy database socket with a client key beside its login, and an http socket with
    a login: the typed form migrate writes holds neither, so each is left in the legacy form
    with the reason. migrate rewrote the database socket without its key, and the key was no
    longer sent nor compared (a rotated key planned nothing)."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "sockets.yaml").write_text("""apiVersion: border0-reconciler/v1
kind: Socket
metadata: {name: orders-db}
spec:
  type: database
  upstream:
    type: postgres
    username: app
    password: {env: DB_PW}
    key: {file: client.key}
  connector: {host: 10.0.0.5, port: 5432}
---
apiVersion: border0-reconciler/v1
kind: Socket
metadata: {name: web}
spec:
  type: http
  upstream: {username: app, password: {env: WEB_PW}}
  connector: {host: 10.0.0.6, port: 8080}
""")
    before = texts(folder)
    code, out, err = cli(["migrate", str(folder)])
    assert (code, err) == (0, "") and texts(folder) == before
    where = folder / "sockets.yaml"
    assert out.splitlines() == [
        (f"{where}:1: left in the legacy form: orders-db: spec.upstream.key would be lost: the "
        "typed form migrate writes has no place for it; write the typed block by hand "
        "(docs/connectors.md)"),
        (f"{where}:13: left in the legacy form: web: spec.upstream.username and "
        "spec.upstream.password would be lost: the typed form migrate writes has no place for "
        "it; write the typed block by hand (docs/connectors.md)"),
        "Nothing to migrate; 2 sockets left in the legacy form."]


LOSSY = """apiVersion: border0-reconciler/v1
kind: Socket
metadata: {name: intranet}
spec:
  type: http
  upstream: {httpHostname: intranet.corp}
  connector: {host: intranet.corp, port: 80}
---
apiVersion: border0-reconciler/v1
kind: Socket
metadata: {name: files}
spec:
  type: http
  upstream: {httpHostname: files.corp}
  connector: {httpserver: true, httpserverDir: /srv/files}
---
apiVersion: border0-reconciler/v1
kind: Socket
metadata: {name: pg}
spec:
  type: database
  upstream: {type: postgres, username: app, password: "from:env:PG_PW"}
  connector: {host: 10.0.0.7, port: 5432}
---
apiVersion: border0-reconciler/v1
kind: Socket
metadata: {name: portal}
spec:
  type: http
  upstream: {httpHostname: portal.corp}
  connector: {host: 10.0.0.8, port: 80}
"""


def test_a_socket_whose_typed_image_reads_back_differently_is_left_in_the_legacy_form(
        tmp_path, emulator, shared_key):
    """In the legacy mode the loader tells border0 a migrated socket's legacy fields again,
    read back from its typed upstream. Three legacy sockets do not come back as written: an
    httpHostname equal to the host (the typed hostHeader reads back as no httpHostname), an
    httpHostname beside the file server (which has no host header), a `from:` password (sent
    as the password itself; typed, it is a reference). migrate rewrote them and the migrated
    folder planned a change migrate never mentioned; each is now left, with why."""
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "sockets.yaml").write_text(LOSSY)
    applied = reconcile([legacy], emulator.client(), ReconcileOptions())
    assert applied.ok, applied.error
    migrated = tmp_path / "migrated"
    shutil.copytree(legacy, migrated)

    code, out, err = cli(["migrate", str(migrated)])
    assert (code, err) == (0, ""), out + err
    where = migrated / "sockets.yaml"
    left = {line.split(": ")[2]: line for line in out.splitlines()
            if ": left in the legacy form: " in line}
    assert set(left) == {"intranet", "files", "pg"}, out
    assert left["intranet"].startswith(
        f"{where}:1: left in the legacy form: intranet: spec.upstream.httpHostname is "
        "spec.connector.host, which the typed hostHeader cannot tell from no httpHostname: "
        "border0 would be told it changed; migrate it with --connector NAME")
    assert "spec.upstream.httpHostname has no place in the typed file server" in left["files"]
    assert "spec.upstream.password is a from: string" in left["pg"]
    assert out.splitlines()[-1] == ("Migrated 1 socket in 1 file; 3 left in the legacy form "
                                    "(docs/migration.md).")
    assert "serviceType" in spec_of(migrated, "sockets.yaml", "portal")["upstream"]

    token = {"BORDER0_ADMIN_TOKEN": emulator.token, FINGERPRINT_KEY_ENV: shared_key}
    code, out, err = cli(["plan", str(migrated), "--api", emulator.url, "--detailed-exitcode"],
                         env=token)
    assert code == 0 and "No changes." in out, (out, err)

    code, out, err = cli(["migrate", str(migrated), "--connector", "edge"])
    assert code == 0 and "left in the legacy form" not in out, out + err  # then they move


def test_an_http_socket_with_an_https_upstream_keeps_it_when_it_moves_to_a_connector(
        tmp_path, emulator, shared_key):
    """`type: http` with `upstream.type: https` is border0's https socket. Moved to a connector
    (step 1, then step 3's --connector), its upstream_type became `type`'s default: the plan
    wrote `type: "https" → "http"` beside the links and the typed upstream migrate announces.
    It is rewritten `type: https`, and the plan shows only those two."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "web.yaml").write_text(
        "apiVersion: border0-reconciler/v1\nkind: Socket\nmetadata: {name: web}\nspec:\n"
        "  type: http\n  upstream:\n    type: https\n"
        "  connector: {host: 127.0.0.1, port: 8443}\n")
    assert reconcile([folder], emulator.client(), ReconcileOptions()).ok
    (folder / "edge.yaml").write_text("apiVersion: border0-reconciler/v1\nkind: Connector\n"
                                      "metadata: {name: edge}\nspec: {}\n")
    assert cli(["migrate", str(folder)])[0] == 0
    code, out, err = cli(["migrate", str(folder), "--connector", "edge"])
    assert code == 0, out + err
    assert spec_of(folder, "web.yaml", "web")["type"] == "https"
    token = {"BORDER0_ADMIN_TOKEN": emulator.token, FINGERPRINT_KEY_ENV: shared_key}
    code, out, err = cli(["plan", str(folder), "--api", emulator.url, "-o", "json"], env=token)
    assert code == 0, err
    [web] = [c for c in json.loads(out)["changes"] if c["name"] == "web"]
    assert [d["path"] for d in web["diffs"]] == ["connectors", "upstream_configuration"], web
