"""Attacks on the sandbox, one property each: every one must be blocked, contained or limited.

Shaped like smolagents' `TestLocalPythonExecutorSecurity` and nanochat's `test_execution.py`: a table
of hostile programs, each with the single property that must hold afterwards. Plus the programs that
must keep working (numpy, a matplotlib PNG, unicode, tracebacks, 10,000 lines of output).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scratchlab.sandbox import Limits, new_work_dir, run_code
from scratchlab.sandbox.policy import SANDBOX_UID, probe, python_layout
from scratchlab.sandbox.workdir import disk_usage

REASON = probe()
pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(REASON is not None, reason=f"bubblewrap unusable: {REASON}"),
]

SECRET = "sk-scratchlab-test-" + secrets.token_hex(8)
MB = 1024 * 1024
TEST_LIMITS = dict(
    timeout_s=15, cpu_s=5, memory_mb=1024, max_procs=32, max_disk_mb=16, max_file_mb=8, tmp_mb=16,
    max_output_bytes=8000,
)  # fmt: skip


def run(tmp_path, code, argv=(), **overrides):
    limits = Limits(**{**TEST_LIMITS, **overrides})
    work = new_work_dir(tmp_path / "sandbox")
    return run_code(code, work, limits=limits, argv=list(argv))


@pytest.fixture
def secrets_on_host(tmp_path, monkeypatch):
    """A fake home with a secret, a fake lab.db, and an API key in the parent's environment."""
    home = tmp_path / "fakehome"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(SECRET)
    (home / ".netrc").write_text(f"machine api.example.com password {SECRET}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    labdb = tmp_path / "home" / "lab.db"
    labdb.parent.mkdir(parents=True, exist_ok=True)
    labdb.write_text(SECRET)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text(SECRET)
    return {"home": home, "labdb": labdb, "outside": outside}


def _reader(paths):
    """Code that tries to read each path and prints whatever it gets."""
    return (
        f"for p in {[str(p) for p in paths]!r}:\n"
        "    try:\n"
        "        print('READ', p, open(p, errors='replace').read())\n"
        "    except OSError as e:\n"
        "        print('DENIED', p, type(e).__name__)\n"
    )


# ---- reading secrets ---------------------------------------------------------------------------------
def test_etc_shadow_is_not_readable(tmp_path):
    r = run(tmp_path, _reader(["/etc/shadow", "/etc/gshadow", "/etc/sudoers"]))
    assert "READ" not in r.stdout and r.stdout.count("DENIED") == 3


def test_home_of_the_user_is_hidden(tmp_path, secrets_on_host):
    home = secrets_on_host["home"]
    r = run(
        tmp_path,
        _reader([home / ".ssh" / "id_ed25519", home / ".netrc"])
        + "import os; print(os.path.expanduser('~'))",
    )
    assert SECRET not in r.stdout + r.stderr
    assert r.stdout.count("DENIED") == 2
    assert r.stdout.strip().endswith("/sandbox")  # HOME inside is the work folder


def test_real_home_and_root_are_hidden(tmp_path):
    real = Path(os.path.expanduser("~"))
    code = f"import os\nfor p in ['/root', '/home', {str(real)!r}]:\n    try: print(p, sorted(os.listdir(p)))\n    except OSError as e: print(p, 'DENIED')\n"
    r = run(tmp_path, code)
    visible = set()
    for line in r.stdout.splitlines():
        if "[" in line:
            visible |= set(eval(line[line.index("[") :]))  # noqa: S307 - our own printed list
    # only the path components leading to the mounted Python prefixes may appear (e.g. /root/.pyenv)
    allowed = set()
    for prefix in python_layout()["prefixes"]:
        for base in ("/root", "/home", str(real)):
            if prefix.startswith(base + "/"):
                allowed.add(Path(prefix).relative_to(base).parts[0])
    assert visible <= allowed
    assert ".bash_history" not in visible and ".ssh" not in visible


def test_workspace_database_is_hidden(tmp_path, secrets_on_host):
    r = run(tmp_path, _reader([secrets_on_host["labdb"], secrets_on_host["outside"] / "notes.txt"]))
    assert SECRET not in r.stdout and r.stdout.count("DENIED") == 2


def test_environment_is_scrubbed(tmp_path, secrets_on_host):
    code = "import os\nprint(dict(os.environ))\n" + _reader(["/proc/self/environ", "/proc/1/environ"])
    r = run(tmp_path, code)
    assert SECRET not in r.stdout + r.stderr
    assert "OPENAI_API_KEY" not in r.stdout and "HF_TOKEN" not in r.stdout


def test_subprocess_environment_is_scrubbed(tmp_path, secrets_on_host):
    r = run(
        tmp_path, "import subprocess; print(subprocess.run(['env'], capture_output=True, text=True).stdout)"
    )
    assert r.ok and "PATH=" in r.stdout
    assert SECRET not in r.stdout


def test_parent_session_keyring_is_not_readable(tmp_path):
    import ctypes
    import platform

    numbers = {"x86_64": (248, 250), "aarch64": (217, 219)}  # add_key, keyctl
    if platform.machine() not in numbers:
        pytest.skip(f"keyctl syscall numbers not listed for {platform.machine()}")
    add_key, keyctl = numbers[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    key = libc.syscall(add_key, b"user", b"scratchlab-test", SECRET.encode(), len(SECRET), -3)  # -3: session
    if key < 0:
        pytest.skip("keyctl is not available here (seccomp?), so no keyring to leak")
    code = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nbuf = ctypes.create_string_buffer(200)\n"
        f"n = libc.syscall({keyctl}, 11, {key}, buf, 200)\nprint('READ', n, buf.raw[: max(n, 0)])\n"
    )
    try:
        r = run(tmp_path, code)
    finally:
        libc.syscall(keyctl, 3, key)  # KEYCTL_REVOKE
    assert SECRET not in r.stdout and "READ -1" in r.stdout


def test_proc_of_the_parent_is_invisible(tmp_path):
    code = (
        "import os\n"
        "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "print('PIDS', pids)\n"
        "print('PPID', os.getppid())\n"
        f"print('HOSTPID', os.path.exists('/proc/{os.getpid()}'))\n"
    )
    r = run(tmp_path, code)
    pids = eval(r.stdout.split("PIDS ", 1)[1].splitlines()[0])  # noqa: S307 - our own printed list
    assert len(pids) <= 3 and max(pids) < 10  # bwrap's init, the program, maybe `ls`
    assert "HOSTPID False" in r.stdout


def test_proc_root_of_init_does_not_lead_out(tmp_path, secrets_on_host):
    target = f"/proc/1/root{secrets_on_host['outside'] / 'notes.txt'}"
    r = run(tmp_path, _reader([target]))
    assert SECRET not in r.stdout and "DENIED" in r.stdout


# ---- writing outside the work folder ------------------------------------------------------------------
def test_system_and_python_are_read_only(tmp_path):
    site = next(p for p in sys.path if p.endswith("site-packages"))
    targets = [
        "/usr/evil",
        "/etc/evil",
        "/evil",
        "/opt/scratchlab/evil",
        os.path.join(site, "evil.py"),
        sys.prefix + "/evil",
    ]
    code = (
        f"for p in {targets!r}:\n"
        "    try:\n        open(p, 'w').write('x'); print('WROTE', p)\n"
        "    except OSError as e:\n        print('DENIED', p)\n"
    )
    r = run(tmp_path, code)
    assert "WROTE" not in r.stdout and r.stdout.count("DENIED") == len(targets)
    assert not os.path.exists(os.path.join(site, "evil.py"))


def test_host_folders_outside_the_work_folder_cannot_be_written(tmp_path, secrets_on_host):
    target = secrets_on_host["outside"] / "planted.txt"
    r = run(tmp_path, f"open({str(target)!r}, 'w').write('x')")
    assert not r.ok and not target.exists()


def test_symlinks_out_are_not_followed(tmp_path, secrets_on_host):
    secret_file = secrets_on_host["outside"] / "notes.txt"
    code = (
        "import os\n"
        f"os.symlink({str(secret_file)!r}, 'link_to_host')\n"
        "os.symlink('/etc/passwd', 'link_to_etc')\n"
        "try:\n    print(open('link_to_host').read())\nexcept OSError as e:\n    print('DENIED')\n"
    )
    r = run(tmp_path, code)
    assert SECRET not in r.stdout and "DENIED" in r.stdout
    # the host side never follows the links: they are not reported (nor read) as files
    assert all(not f.path.startswith("link_to") for f in r.files)
    assert secret_file.read_text() == SECRET


def test_tmp_is_private_and_fresh(tmp_path):
    marker = "marker-" + secrets.token_hex(4)
    run(tmp_path, f"open('/tmp/{marker}', 'w').write('x')")
    r = run(tmp_path, f"import os; print(os.path.exists('/tmp/{marker}'))")
    assert r.stdout.strip() == "False"
    assert not os.path.exists(f"/tmp/{marker}")


# ---- network ------------------------------------------------------------------------------------------
def test_loopback_service_of_the_host_is_unreachable(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\n"
        "except OSError as e:\n    print('BLOCKED', type(e).__name__)\n"
    )
    r = run(tmp_path, code)
    server.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing reached the listening socket's backlog
        server.accept()
    server.close()
    assert "BLOCKED" in r.stdout


def test_no_route_to_the_internet(tmp_path):
    r = run(
        tmp_path,
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3); print('CONNECTED')\nexcept OSError as e:\n    print('BLOCKED', e)\n",
    )
    assert "BLOCKED" in r.stdout


def test_dns_does_not_resolve(tmp_path):
    r = run(
        tmp_path,
        "import socket\ntry:\n    print('RESOLVED', socket.getaddrinfo('pypi.org', 443))\nexcept OSError as e:\n    print('BLOCKED', e)\n",
    )
    assert "BLOCKED" in r.stdout


def test_raw_sockets_need_a_capability_we_lack(tmp_path):
    r = run(
        tmp_path,
        "import socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('RAW')\nexcept OSError as e:\n    print('BLOCKED', e)\n",
    )
    assert "BLOCKED" in r.stdout


# ---- subprocess, ctypes, signals: allowed but confined --------------------------------------------------
def test_subprocess_and_os_system_are_confined(tmp_path):
    code = (
        "import os, subprocess\n"
        "os.system('id -u')\n"
        "print(subprocess.run(['cat', '/etc/shadow'], capture_output=True, text=True).returncode)\n"
        "print(subprocess.run(['sh', '-c', 'echo x > /usr/evil'], capture_output=True).returncode)\n"
    )
    r = run(tmp_path, code)
    lines = r.stdout.split()
    assert lines[0] == str(SANDBOX_UID)  # not root, even when the tests run as root
    assert lines[1] != "0" and lines[2] != "0"


def test_ctypes_cannot_regain_privileges(tmp_path):
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('setuid', libc.setuid(0))\n"
        "print('mount', libc.mount(b'none', b'/usr', b'tmpfs', 0, None))\n"
        "print('chroot', libc.chroot(b'/tmp'))\n"
        "import os; print('uid', os.getuid())\n"
    )
    r = run(tmp_path, code)
    assert "setuid -1" in r.stdout and "mount -1" in r.stdout and "chroot -1" in r.stdout
    assert f"uid {SANDBOX_UID}" in r.stdout


def test_no_capabilities_inside(tmp_path):
    r = run(
        tmp_path,
        "print([l for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapPrm', 'NoNewPrivs'))])",
    )
    assert "CapEff:\\t0000000000000000" in r.stdout and "CapPrm:\\t0000000000000000" in r.stdout
    assert "NoNewPrivs:\\t1" in r.stdout


def test_no_file_descriptors_leak_in(tmp_path):
    leaked = open(tmp_path / "parent-open.txt", "w")  # noqa: SIM115 - an fd the parent holds open
    try:
        r = run(
            tmp_path, "import os\nfds = os.listdir('/proc/self/fd')\nprint(len(fds) - 1)"
        )  # minus listdir's own
    finally:
        leaked.close()
    assert r.stdout.strip() == "3"  # stdin, stdout, stderr only


def test_signals_cannot_reach_the_parent(tmp_path):
    canary = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        code = (
            "import os, signal\n"
            f"for pid in ({os.getpid()}, {canary.pid}, -1):\n"
            "    try:\n        os.kill(pid, signal.SIGKILL); print('SENT', pid)\n"
            "    except OSError as e:\n        print('DENIED', pid, type(e).__name__)\n"
        )
        r = run(tmp_path, code)
        time.sleep(0.2)
        assert canary.poll() is None  # still alive
        assert f"DENIED {canary.pid}" in r.stdout or f"SENT {canary.pid}" not in r.stdout
    finally:
        canary.kill()
        canary.wait()


# ---- resource limits ---------------------------------------------------------------------------------
def _survivors(marker: str) -> list[int]:
    """Pids of live processes whose command line contains `marker` (read from /proc, any uid)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


def test_fork_bomb_is_limited_by_max_procs(tmp_path):
    code = (
        "import os, time\nn = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n    print('LIMITED', n)\n"
    )
    marker = "bomb-" + secrets.token_hex(4)
    r = run(tmp_path, code, argv=[marker], max_procs=16)
    assert "LIMITED" in r.stdout
    assert int(r.stdout.split()[1]) < 16
    assert not _survivors(marker)  # the sleeping children died with the run


def test_exponential_fork_bomb_is_contained_and_killed(tmp_path):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    marker = "bomb-" + secrets.token_hex(4)
    r = run(tmp_path, code, argv=[marker], max_procs=16, timeout_s=2, cpu_s=60)
    assert not r.ok and r.killed_by in ("timeout", "cpu")
    time.sleep(0.2)
    assert not _survivors(marker)


def test_memory_bomb_hits_the_memory_limit(tmp_path):
    r = run(
        tmp_path, "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n", memory_mb=256
    )
    assert not r.ok and r.memory_exceeded and r.killed_by == "memory"
    assert "MemoryError" in r.stderr


def test_single_huge_allocation_is_refused(tmp_path):
    r = run(tmp_path, "x = bytearray(8 * 1024**3)", memory_mb=256)
    assert r.memory_exceeded and not r.ok


def test_cpu_burn_hits_the_cpu_limit(tmp_path):
    r = run(tmp_path, "while True:\n    pass\n", cpu_s=1, timeout_s=20)
    assert not r.ok and r.killed_by == "cpu" and not r.timed_out


def test_sleeping_forever_hits_the_wall_clock_timeout(tmp_path):
    r = run(tmp_path, "import time\nprint('start', flush=True)\ntime.sleep(60)\n", timeout_s=3)
    assert r.timed_out and r.killed_by == "timeout" and not r.ok
    assert (
        "start" in r.stdout
    )  # output before the kill is kept (3 s: bwrap and Python start in time on a busy box)
    assert r.duration_s < 30  # 3 s limit; reaping once took 10 s on a machine at load 4+ (see closing note)


def test_huge_output_is_truncated_with_a_marker_and_killed(tmp_path):
    r = run(tmp_path, "while True:\n    print('x' * 1000)\n", max_output_bytes=4000)
    assert r.killed_by == "output" and r.truncated
    assert "bytes of output dropped" in r.stdout
    assert len(r.stdout) < 4000 + 200


def test_large_but_finite_output_is_truncated_not_killed(tmp_path):
    r = run(tmp_path, "import sys\nsys.stdout.write('y' * 100_000)\nprint('END')\n", max_output_bytes=4000)
    assert r.ok and r.truncated and r.stdout.rstrip().endswith("END")
    assert len(r.stdout) < 4000 + 200


def test_open_files_are_limited(tmp_path):
    code = (
        "files = []\ntry:\n    while True:\n        files.append(open('/dev/null'))\n"
        "except OSError as e:\n    print('LIMITED', len(files), e.errno)\n"
    )
    r = run(tmp_path, code, max_open_files=64)
    _, n, errno = r.stdout.split()
    assert int(n) < 64 and errno == "24"  # EMFILE


def test_one_huge_file_hits_the_file_size_limit(tmp_path):
    r = run(tmp_path, "open('big', 'wb').write(b'0' * (64 * 1024 * 1024))", max_file_mb=4)
    assert not r.ok and r.killed_by == "file_size"
    assert Path(r.work_dir, "big").stat().st_size <= 4 * MB


def test_disk_filling_is_stopped(tmp_path):
    code = "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'0' * (2 * 1024 * 1024)); i += 1\n"
    r = run(tmp_path, code, max_disk_mb=8, max_file_mb=4, timeout_s=20)
    assert not r.ok and r.killed_by == "disk"
    assert disk_usage(r.work_dir) < 512 * MB  # stopped within one polling interval, not at the timeout
    assert (
        r.duration_s < 20
    )  # before the wall-clock limit (a fixed 10 s bound failed once on a busy CI disk: 10.1 s)


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_creating_many_empty_files_is_stopped(tmp_path, layout):
    """Issue 16: a program created 200,000 empty files in its work folder within a 10 s limit (the
    byte limit never fired), which can exhaust the host disk's inodes."""
    make = (
        "open(f'f{i}', 'w').close()"
        if layout == "flat"
        else "os.makedirs(f'd{i // 500}', exist_ok=True); open(f'd{i // 500}/f{i}', 'w').close()"
    )
    code = f"import os\nfor i in range(200_000):\n    {make}\nprint('made them all')\n"
    r = run(tmp_path, code, max_files=2000, timeout_s=10)
    assert not r.ok and r.killed_by == "files", (r.killed_by, r.stderr[-300:])
    assert "made them all" not in r.stdout
    made = sum(len(d) + len(f) for _, d, f in os.walk(r.work_dir))
    assert made < 20_000  # stopped near the limit, far from 200,000
    assert any("2000 files and folders" in w for w in r.warnings)


def test_tmp_is_size_limited(tmp_path):
    r = run(tmp_path, "open('/tmp/x', 'wb').write(b'0' * (32 * 1024 * 1024))", tmp_mb=8, max_file_mb=64)
    assert not r.ok and "No space left on device" in r.stderr


def test_shared_memory_is_size_limited_and_dev_is_read_only(tmp_path):
    code = (
        "try:\n    open('/dev/evil', 'w'); print('DEV WRITABLE')\nexcept OSError:\n    print('dev read-only')\n"
        "open('/dev/shm/a', 'wb').write(b'0' * 1024)\nprint('shm usable')\n"
        "open('/dev/shm/b', 'wb').write(b'0' * (32 * 1024 * 1024))\n"
    )
    r = run(tmp_path, code, tmp_mb=8, max_file_mb=64)
    assert r.stdout.split("\n")[:2] == ["dev read-only", "shm usable"]
    assert not r.ok and "No space left on device" in r.stderr


def test_daemonized_process_does_not_outlive_the_run(tmp_path):
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(1)\n"
        "        open('/sandbox/survivor.txt', 'w').write('alive')\n"
        "        os._exit(0)\n"
        "    os._exit(0)\n"
        "print('parent exits')\n"
    )
    marker = "daemon-" + secrets.token_hex(4)
    r = run(tmp_path, code, argv=[marker])
    assert r.ok
    time.sleep(0.3)
    assert not _survivors(marker)
    time.sleep(1.5)
    assert not Path(r.work_dir, "survivor.txt").exists()


# ---- programs that must work ------------------------------------------------------------------------------
def test_numpy_works(tmp_path):
    r = run(tmp_path, "import numpy as np\nprint(int(np.arange(10).sum()), np.linalg.norm([3.0, 4.0]))")
    assert r.ok, r.stderr
    assert r.stdout.split() == ["45", "5.0"]


@pytest.mark.slow
def test_torch_works_under_the_default_memory_limit(tmp_path):
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed in this interpreter")
    r = run_code(
        "import torch\ntorch.manual_seed(0)\nx = torch.ones(3, 4)\nprint(tuple((x @ x.T).shape), float(x.sum()))",
        new_work_dir(tmp_path / "sandbox"),
        limits=Limits(timeout_s=120),
    )
    assert r.ok, r.stderr
    assert r.stdout.split("\n")[0] == "(3, 3) 12.0"


def test_matplotlib_png_comes_back_as_a_file(tmp_path):
    code = (
        "import matplotlib\nimport matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [3, 1, 2])\nplt.savefig('plot.png')\nprint(matplotlib.get_backend())\n"
    )
    r = run(tmp_path, code)
    assert r.ok, r.stderr
    assert r.stdout.strip().lower() == "agg"
    (png,) = [f for f in r.files if f.path == "plot.png"]
    assert png.image and png.status == "new" and png.size > 1000
    assert Path(r.work_dir, "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unicode_output_round_trips(tmp_path):
    text = "héllo wörld — 世界 🚀 Ελληνικά"
    r = run(tmp_path, f"print({text!r})")
    assert r.ok and r.stdout == text + "\n"


def test_exception_comes_back_with_its_traceback(tmp_path):
    r = run(tmp_path, "def f(x):\n    return 1 / x\n\nf(0)\n")
    assert not r.ok and r.exit_code == 1 and r.killed_by is None
    assert "Traceback" in r.stderr and "ZeroDivisionError" in r.stderr
    assert "return 1 / x" in r.stderr  # source lines are shown
    assert "inside.py" not in r.stderr  # our runner's frames are not


def test_ten_thousand_lines_of_output(tmp_path):
    r = run(tmp_path, "for i in range(10_000):\n    print(i)\n", max_output_bytes=64_000)
    assert r.ok and not r.truncated
    assert r.stdout.splitlines() == [str(i) for i in range(10_000)]


def test_exit_code_is_reported(tmp_path):
    r = run(tmp_path, "import sys; sys.exit(3)")
    assert r.exit_code == 3 and not r.ok and r.killed_by is None


def test_result_is_json_round_trippable(tmp_path):
    from scratchlab.sandbox import RunResult

    r = run(tmp_path, "open('a.txt', 'w').write('hi'); print('ok')")
    again = RunResult.from_dict(__import__("json").loads(r.to_json()))
    assert again == r and again.files[0].path == "a.txt"
