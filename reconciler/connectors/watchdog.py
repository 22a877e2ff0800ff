"""The watchdog's program (process_groups.py starts one per daemon): when the daemon dies,
SIGKILL included, its pipe closes and the watchdog ends the connectors' trees (by marker and
cgroup: trees.py) and sessions, then exits."""

__all__ = ["WATCHDOG"]

#: The watchdog, run as `python -I -c WATCHDOG`: standard library only, nothing of ours to
#: import, so it starts in a few ms and cannot fail on an import.
WATCHDOG = r"""
import os, signal, sys
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
sessions = set()
for line in sys.stdin.buffer:
    try:
        sid = int(line[1:])
    except ValueError:
        continue
    (sessions.add if line[:1] == b"+" else sessions.discard)(sid)
def members(sid):
    out = []
    for e in os.listdir("/proc") if os.path.isdir("/proc") else ():
        try:
            with open("/proc/%s/stat" % e) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(e))
    return out
def marked(prefix):
    out, me, uid = [], os.getpid(), os.getuid()
    for e in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not e.isdigit() or int(e) == me:
            continue
        try:
            if os.stat("/proc/" + e).st_uid != uid:
                continue
            with open("/proc/%s/environ" % e, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(prefix) for v in env):
            out.append(int(e))
    return out
def cgroup_pids(base):
    out = []
    for root, dirs, files in os.walk(base) if base else ():
        try:
            with open(os.path.join(root, "cgroup.procs")) as f:
                out += [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            pass
    return out
instance = sys.argv[1].encode() if len(sys.argv) > 1 and sys.argv[1] else b""
base = sys.argv[2] if len(sys.argv) > 2 else ""
for _ in range(20):
    found = (marked(b"BORDER0_RECONCILER_TREE=" + instance + b":") if instance else []) + (
        cgroup_pids(base))
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if not found:
        break
for root, dirs, files in os.walk(base, topdown=False) if base else ():
    try:
        os.rmdir(root)  # the emptied cgroups of the trees, and the instance's
    except OSError:
        pass
for sid in sessions:
    for _ in range(5):
        try:
            os.killpg(sid, signal.SIGKILL)
        except OSError:
            pass
        found = members(sid)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not found:
            break
"""
