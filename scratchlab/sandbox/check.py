"""Self-test of the sandbox on this machine: which guarantees actually hold here.

    scratchlab sandbox check [--json]
    from scratchlab.sandbox.check import run_checks; [c.to_dict() for c in run_checks()]

Each check runs real hostile code in the sandbox (not a look at the configuration) and reports
`holds` plus what it saw. Takes a few seconds (the CPU check burns one CPU second).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from scratchlab.sandbox import policy
from scratchlab.sandbox.limits import Limits
from scratchlab.sandbox.policy import SANDBOX_UID
from scratchlab.sandbox.runner import run_code
from scratchlab.sandbox.workdir import new_work_dir

CHECK_LIMITS = dict(timeout_s=20, cpu_s=5, memory_mb=1024, max_procs=16, max_disk_mb=16, max_file_mb=4, tmp_mb=16,
                    max_output_bytes=2000)  # fmt: skip
CANARY_ENV = "SCRATCHLAB_SANDBOX_CHECK_CANARY"

PROBE = """
import json, os, socket
out = {}
def attempt(name, fn):
    try:
        out[name] = "ALLOWED: " + str(fn())[:80]
    except Exception as e:
        out[name] = "blocked: " + type(e).__name__
attempt("internet", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
attempt("host_loopback", lambda: socket.create_connection(("127.0.0.1", PORT), timeout=2))
attempt("dns", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("write_usr", lambda: open("/usr/scratchlab-check", "w"))
attempt("write_root", lambda: open("/scratchlab-check", "w"))
attempt("read_shadow", lambda: open("/etc/shadow").read())
attempt("read_home_secret", lambda: open(SECRET_PATH).read())
out["uid"] = os.getuid()
out["caps"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
out["env_canary"] = CANARY in json.dumps(dict(os.environ))
out["pids"] = len([p for p in os.listdir("/proc") if p.isdigit()])
print(json.dumps(out))
"""


@dataclass
class Check:
    """One guarantee: its name, whether it holds on this machine, and what the test saw."""

    name: str
    holds: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _limits(**kw) -> Limits:
    return Limits(**{**CHECK_LIMITS, **kw})


def run_checks(root: str | os.PathLike | None = None) -> list[Check]:
    """Run the self-test. Returns the list of checks (the first one says whether bwrap works at all).

    Args:
        root: folder for the throw-away work folders (default: a temporary folder, removed after).
    """
    reason = policy.probe()
    checks = [
        Check("bubblewrap and user namespaces", reason is None, reason or f"bwrap at {policy.find_bwrap()}")
    ]
    if reason is not None:
        return checks
    with tempfile.TemporaryDirectory(prefix="scratchlab-check-", dir=root) as tmp:
        return checks + _sandbox_checks(Path(tmp))


def _sandbox_checks(tmp: Path) -> list[Check]:
    checks = []
    secret = "canary-" + secrets.token_hex(8)
    secret_path = tmp / "host-home" / "secret.txt"
    secret_path.parent.mkdir()
    secret_path.write_text(secret)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    os.environ[CANARY_ENV] = secret
    try:
        code = PROBE.replace("PORT", str(port)).replace("SECRET_PATH", repr(str(secret_path)))
        code = code.replace("CANARY", repr(secret))
        r = run_code(code, new_work_dir(tmp, "check"), limits=_limits())
        server.setblocking(False)
        try:
            server.accept()
            reached = True
        except BlockingIOError:
            reached = False
    finally:
        os.environ.pop(CANARY_ENV, None)
        server.close()
    try:
        seen = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [Check("sandbox runs Python", False, (r.stderr or r.stdout)[-300:])]

    def blocked(*keys):
        return all(seen[k].startswith("blocked") for k in keys), ", ".join(f"{k}: {seen[k]}" for k in keys)

    ok, detail = blocked("internet", "dns", "host_loopback")
    checks.append(Check("no network (internet, DNS, host loopback)", ok and not reached, detail))
    ok, detail = blocked("write_usr", "write_root")
    checks.append(Check("read-only system", ok, detail))
    ok, detail = blocked("read_shadow", "read_home_secret")
    checks.append(Check("hidden home and /etc/shadow", ok, detail))
    checks.append(
        Check(
            "scrubbed environment",
            not seen["env_canary"],
            f"parent's canary variable visible: {seen['env_canary']}",
        )
    )
    unpriv = seen["uid"] == SANDBOX_UID and int(seen["caps"], 16) == 0
    checks.append(
        Check(
            "unprivileged (uid 65534, no capabilities)", unpriv, f"uid {seen['uid']}, CapEff {seen['caps']}"
        )
    )
    checks.append(Check("own pid namespace", seen["pids"] <= 3, f"{seen['pids']} processes visible in /proc"))

    r = run_code("x = bytearray(4 * 1024**3)", new_work_dir(tmp, "check"), limits=_limits(memory_mb=256))
    checks.append(
        Check(
            "memory limit",
            r.memory_exceeded,
            f"4 GiB allocation under a 256 MiB limit: killed_by={r.killed_by}",
        )
    )
    code = "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(5); os._exit(0)\n        n += 1\nexcept OSError:\n    print(n)\n"
    r = run_code(code, new_work_dir(tmp, "check"), limits=_limits(max_procs=16))
    n = r.stdout.strip()
    checks.append(
        Check(
            "process limit (fork bomb)",
            n.isdigit() and int(n) < 16,
            f"forks allowed under max_procs=16: {n or r.stderr[-100:]}",
        )
    )
    r = run_code("while True:\n    pass\n", new_work_dir(tmp, "check"), limits=_limits(cpu_s=1))
    checks.append(
        Check(
            "CPU-time limit",
            r.killed_by == "cpu",
            f"busy loop with cpu_s=1: killed_by={r.killed_by} after {r.duration_s:.1f}s",
        )
    )
    r = run_code("import time\ntime.sleep(30)\n", new_work_dir(tmp, "check"), limits=_limits(timeout_s=1))
    checks.append(
        Check(
            "wall-clock timeout", r.timed_out, f"sleep 30 with timeout_s=1: stopped after {r.duration_s:.1f}s"
        )
    )
    r = run_code("while True:\n    print('x' * 100)\n", new_work_dir(tmp, "check"), limits=_limits())
    checks.append(
        Check(
            "output limit",
            r.truncated and r.killed_by == "output",
            f"endless output: kept {len(r.stdout)} chars, killed_by={r.killed_by}",
        )
    )
    r = run_code("open('big', 'wb').write(b'0' * 64 * 1024**2)", new_work_dir(tmp, "check"), limits=_limits())
    checks.append(
        Check(
            "file-size limit",
            r.killed_by == "file_size",
            f"64 MiB file with max_file_mb=4: killed_by={r.killed_by}",
        )
    )
    code = "for i in range(200_000):\n    open(f'f{i}', 'w').close()\n"
    r = run_code(code, new_work_dir(tmp, "check"), limits=_limits(max_files=2000))
    made = sum(len(d) + len(f) for _, d, f in os.walk(r.work_dir))
    checks.append(
        Check(
            "file-count limit",
            r.killed_by == "files",
            f"200,000 empty files with max_files=2000: killed_by={r.killed_by} after {made} entries",
        )
    )
    return checks
