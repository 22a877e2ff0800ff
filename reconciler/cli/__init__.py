"""The command line: one module per command group; thin (parse, call, print, exit code)."""

from reconciler.cli.main import main, program

__all__ = ["main", "program"]
