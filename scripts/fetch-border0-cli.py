"""Fetch the border0 CLI into the current folder, for the image's `border0-cli` stage.

BORDER0_CLI_URL: the linux `border0` binary, or a .tar.gz holding it (empty: build without it).
BORDER0_CLI_SHA256: its sha256, checked when given (a warning with the digest when not).
A file of its own rather than a Dockerfile heredoc, so any OCI builder (buildah, podman, kaniko,
docker without BuildKit) builds the image. python:3.11-slim has no curl: urllib downloads.
"""

import hashlib
import io
import os
import sys
import tarfile
import urllib.request

url, want = os.environ.get("BORDER0_CLI_URL", ""), os.environ.get("BORDER0_CLI_SHA256", "")
if not url:
    print("BORDER0_CLI_URL not set: building without the border0 CLI")
    sys.exit(0)
data = urllib.request.urlopen(url, timeout=120).read()
got = hashlib.sha256(data).hexdigest()
if want and got != want.lower():
    sys.exit(f"border0 CLI sha256 mismatch: expected {want}, got {got}")
if not want:
    print(f"warning: BORDER0_CLI_SHA256 not set; downloaded sha256 is {got}")
if url.endswith((".tar.gz", ".tgz")):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = next(m for m in tar.getmembers() if os.path.basename(m.name) == "border0")
        data = tar.extractfile(member).read()
with open("border0", "wb") as out:  # in the current folder (the stage's WORKDIR /out)
    out.write(data)
os.chmod("border0", 0o755)
