"""Put on PYTHONPATH by tests/contract_recorder.py: a Python child process of a test checks the
requests its border0 client sends, as the test process does. httpx is wrapped when (and only
if) the child imports it, so children that never talk to border0 pay nothing."""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent.parent)


class _WrapHttpxOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "httpx":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("httpx")
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            if _TESTS not in sys.path:
                sys.path.append(_TESTS)
            import contract_recorder

            contract_recorder.install(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("BORDER0_CONTRACT_LOG"):
    sys.meta_path.insert(0, _WrapHttpxOnImport())
