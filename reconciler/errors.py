"""The errors a user can cause, and the one place their tree is drawn.

    UserError                     bad flags, unreadable files, invalid manifests, refused plans
      EnvFileError                (manifests/files.py) an env file that cannot be read or parsed
    Border0Error                  (reconciler/border0/errors.py) everything border0 answered or
                                  did not answer; its own tree is drawn there

Both end as one `error: ...` line and exit code 1 (reconciler/cli/options.py, `friendly_errors`);
nothing else in the code turns an exception into an exit code.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 1."""
