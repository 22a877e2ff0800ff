"""`border0-reconciler-ci plan|apply`: the CI step that action.yml (GitHub) and
templates/border0-reconciler.yml (GitLab) run. The logic is the shell script `step.sh` beside
this file, shipped in the wheel so both find it where the reconciler is installed; this only
runs it with bash, telling it which Python has the reconciler (for `python -m reconciler.forge`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["SCRIPT", "main"]

SCRIPT = Path(__file__).with_name("step.sh")


def main() -> None:
    bash = shutil.which("bash")
    if bash is None:
        sys.exit("error: border0-reconciler-ci needs bash")
    os.environ["BORDER0_CI_PYTHON"] = sys.executable
    os.execv(bash, [bash, str(SCRIPT), *sys.argv[1:]])
