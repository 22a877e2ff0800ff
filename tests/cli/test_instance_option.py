"""`--instance` is checked once, where the option is read (`options.instance_option`, by
`ownership.Instance`): every command that takes it refuses a bad one with the same one line and
exit code 1, before it reads a manifest or opens the API."""

from __future__ import annotations

from pathlib import Path

from helpers import REPO, cli

from reconciler.cli.main import cli as click_group

EXAMPLES = str(REPO / "examples")
#: The arguments each command taking --instance needs besides it.
ARGUMENTS = {
    "plan": [EXAMPLES],
    "apply": [EXAMPLES, "--auto-approve"],
    "run": [EXAMPLES, "--once"],
    "ls": [],
    "policies": [],
    "show": ["web"],
    "import": ["out"],
}


def commands_with_instance() -> set[str]:
    ctx = click_group.make_context("border0-reconciler", ["--help"], resilient_parsing=True)
    names = set()
    for name in click_group.list_commands(ctx):
        command = click_group.get_command(ctx, name)
        if command is not None and any(p.name == "instance" for p in command.params):
            names.add(name)
    return names


def test_every_command_refuses_a_bad_instance_with_one_line_and_touches_nothing(
    tmp_path: Path,
) -> None:
    assert commands_with_instance() == set(ARGUMENTS)  # a new command gets a row here
    state = tmp_path / "local.db"
    for name, args in ARGUMENTS.items():
        code, out, err = cli([name, *args, "--instance", "my team", "--api", "local",
                              "--state", str(state)], cwd=tmp_path)
        assert (code, out) == (1, ""), (name, err)
        assert err == ("error: invalid instance 'my team': use 1 to 63 letters, digits, "
                       "'.', '_' or '-'\n"), name
    assert list(tmp_path.iterdir()) == []  # no emulator state, no import output


def test_a_bad_instance_from_the_environment_is_the_same_error(tmp_path: Path) -> None:
    code, out, err = cli(["ls", "--api", "local", "--state", str(tmp_path / "local.db")],
                         env={"BORDER0_RECONCILER_INSTANCE": "-" * 64}, cwd=tmp_path)
    assert (code, out) == (1, "")
    assert err.startswith("error: invalid instance '") and len(err.splitlines()) == 1


def test_a_valid_instance_is_used(tmp_path: Path) -> None:
    code, out, err = cli(["ls", "--instance", "team-a.prod_1", "--api", "local", "--state",
                          str(tmp_path / "local.db"), "-o", "json"], cwd=tmp_path)
    assert code == 0, err
    assert out.strip().startswith("[") or out.strip().startswith("{")
