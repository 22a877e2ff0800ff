"""The command line: one module per command group; thin (parse, call, print, exit code)."""

from reconciler.cli.main import main

__all__ = ["main"]
