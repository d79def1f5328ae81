"""Sandbox policy: the scrubbed environment, the mounts and the bubblewrap command line.

    limits = Limits(timeout_s=10, memory_mb=512)
    argv = bwrap_argv(bwrap, work_dir, limits, mounts=[Mount("/data/x.csv", "/mnt/x.csv")], config={...})

Everything a sandboxed process can see is decided here: namespaces (user, pid, ipc, uts, net,
cgroup), the read-only system (/usr and its merged-/usr symlinks, a synthetic /etc with only what
Python needs), the Python prefixes (venv and base interpreter) read-only, a private size-limited
/tmp, its own /proc, a minimal /dev, and one writable folder bound at `WORK_DIR` (/sandbox).

Source: bubblewrap's own documentation (bwrap(1)) and the flatpak sandbox it was written for; the
limits follow nanochat's `execution.py` (rlimits in the child) and smolagents' named constants.
"""

from __future__ import annotations

import functools
import marshal
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scratchlab.sandbox.errors import SandboxConfigError
from scratchlab.sandbox.limits import MB, Limits
from scratchlab.sandbox.mplcache import matplotlib_cache

SANDBOX_UID = 65534  # "nobody": the uid (inside and, when started as root, outside) that runs the code
WORK_DIR = "/sandbox"  # where the one writable folder appears inside (cwd and HOME of the code)
TMP_DIR = "/tmp"
INSIDE_SCRIPT = "/opt/scratchlab/inside.py"
MPL_CACHE_DIR = "/opt/scratchlab/matplotlib"  # read-only prebuilt font cache, copied to $MPLCONFIGDIR
HOST_INSIDE_SCRIPT = Path(__file__).with_name("inside.py")
UNSAFE_TMP_NAME = ".scratchlab-tmp"  # /tmp of an unsafe (unsandboxed) run, inside its work folder
PYTHON_FLAGS = ("-I", "-S", "-B", "-u")  # isolated, no site (paths added by inside.py), no .pyc, unbuffered

ENV_ALLOW = {  # the whole environment of sandboxed code: nothing from the parent passes through
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": WORK_DIR,
    "TMPDIR": TMP_DIR,
    "USER": "sandbox",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": f"{TMP_DIR}/matplotlib",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONIOENCODING": "utf-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TORCHINDUCTOR_CACHE_DIR": f"{TMP_DIR}/torchinductor",
}

FIX_BWRAP_MISSING = (
    "bubblewrap (`bwrap`) is not installed, so Python cannot be sandboxed. Install it with "
    "`sudo apt-get install -y bubblewrap` (Debian/Ubuntu) or `sudo dnf install bubblewrap` (Fedora), "
    "then run `scratchlab sandbox check`."
)
FIX_USERNS = (
    "bubblewrap is installed but cannot create a user namespace here ({reason}). Enable unprivileged "
    "user namespaces: `sudo sysctl -w kernel.unprivileged_userns_clone=1` (Debian), "
    "`sudo sysctl -w user.max_user_namespaces=15000`, or on Ubuntu 24.04+ "
    "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; in Docker run the container "
    "with `--security-opt seccomp=unconfined` (or `--privileged`). Then run `scratchlab sandbox check`."
)
UNSAFE_WARNING = (
    "WARNING: running WITHOUT the sandbox (--unsafe-no-sandbox): the code can read your files, "
    "use the network and see your environment. Only resource limits apply."
)


@dataclass(frozen=True)
class Mount:
    """A host path made visible read-only inside the sandbox at `dest` (absolute)."""

    src: str
    dest: str


def normalize_mounts(ro_mounts) -> list[Mount]:
    """Turn `ro_mounts` into `Mount`s.

    Args:
        ro_mounts: None, a sequence of host paths (each appears at ``/mnt/<basename>``) or of
            ``(host_path, dest)`` pairs, or a mapping ``{dest: host_path}``.

    Raises:
        SandboxConfigError: a path is missing, a destination is relative, reserved or repeated.
    """
    if not ro_mounts:
        return []
    pairs = [(src, dest) for dest, src in ro_mounts.items()] if isinstance(ro_mounts, dict) else []
    if not pairs:
        for item in ro_mounts:
            if isinstance(item, tuple | list):
                pairs.append((item[0], item[1]))
            else:
                pairs.append((item, f"/mnt/{Path(item).name}"))
    out, seen = [], set()
    for src, dest in pairs:
        path = Path(src).expanduser()
        if not path.exists():
            raise SandboxConfigError(f"read-only mount source {str(src)!r} does not exist")
        dest = str(dest)
        reserved = ("/", "/usr", "/proc", "/dev", "/tmp", "/etc", "/opt", WORK_DIR)
        if (
            not dest.startswith("/")
            or ".." in Path(dest).parts
            or dest.rstrip("/") in reserved
            or dest in seen
        ):
            raise SandboxConfigError(
                f"invalid mount destination {dest!r}; use a new absolute path such as /mnt/data"
            )
        seen.add(dest)
        out.append(Mount(str(path.resolve()), dest))
    return out


# ---- the host side --------------------------------------------------------------------------------------
def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def is_root() -> bool:
    return os.geteuid() == 0


@functools.lru_cache(maxsize=1)
def python_layout() -> dict:
    """Where this interpreter lives: the paths to mount read-only and the site-packages to add.

    Returns:
        dict with ``executable`` (str, the interpreter to start inside), ``prefixes`` (list of str
        folders to bind read-only) and ``site_packages`` (list of str, appended to sys.path inside).
    """
    prefixes = {
        os.path.realpath(sys.prefix),
        os.path.realpath(sys.base_prefix),
        os.path.realpath(sys.exec_prefix),
    }
    site = []
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths()[key]
        if p not in site and os.path.isdir(p):
            site.append(p)
    # the executable path may be a symlink into the base prefix; keep the venv path so pyvenv.cfg is found
    exe = sys.executable
    return {
        "executable": exe,
        "prefixes": sorted(p for p in prefixes if not _under_usr(p)),
        "site_packages": site,
    }


def _under_usr(path: str) -> bool:
    return path == "/usr" or path.startswith("/usr/")


@functools.lru_cache(maxsize=1)
def etc_dir() -> str:
    """A private folder with the few /etc files code inside may look up (no shadow, no hosts of ours)."""
    d = Path(tempfile.mkdtemp(prefix="scratchlab-sandbox-etc-"))
    (d / "passwd").write_text(f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{WORK_DIR}:/bin/sh\n")
    (d / "group").write_text(f"sandbox:x:{SANDBOX_UID}:\n")
    (d / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    (d / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files\n")
    for p in d.iterdir():
        p.chmod(0o644)
    d.chmod(0o755)
    return str(d)


ETC_FROM_HOST = ("ld.so.cache", "ld.so.conf", "localtime", "alternatives", "fonts", "mime.types")


def system_binds() -> list[str]:
    """bwrap arguments that mount the system read-only: /usr, merged-/usr symlinks, a minimal /etc."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / top
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{top}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{top}"]
    etc = etc_dir()
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ("passwd", "group", "hosts", "nsswitch.conf"):
        args += ["--ro-bind", f"{etc}/{name}", f"/etc/{name}"]
    for name in ETC_FROM_HOST:
        if os.path.exists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


def inside_args(config: dict) -> list[str]:
    """argv for inside.py: the config (marshal, hex) then the program's own arguments in clear.

    marshal, not JSON, because `import json` (which imports `re`) is a sizeable share of a one-shot
    run's start-up. The config is ours (limits, paths), never the user's data; the result comes back
    as JSON.
    """
    config = dict(config)
    program_argv = [str(a) for a in config.pop("argv", [])]
    return [marshal.dumps(config).hex(), *program_argv]


def _parent_dirs(dest: str) -> list[str]:
    """bwrap arguments creating the parents of `dest` world-traversable (bwrap may make them 0700)."""
    args = []
    for parent in reversed(Path(dest).parents):
        if str(parent) != "/":
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def bwrap_argv(
    bwrap: str,
    work_dir: str | os.PathLike,
    limits: Limits,
    mounts: list[Mount],
    config: dict,
    *,
    as_root: bool,
    info_fd: int | None = None,
    block_fd: int | None = None,
) -> list[str]:
    """The full bwrap command line that runs `inside.py` with `config`.

    Args:
        bwrap: path of the bwrap binary.
        work_dir: host folder bound writable at `WORK_DIR` (the only writable host path).
        limits: the run's limits (tmp size is applied here, the rest by inside.py).
        mounts: extra read-only mounts.
        config: JSON-able dict passed to inside.py (mode, limits, site_packages, ...).
        as_root: started by root: grant CAP_SETUID/SETGID only, so inside.py can switch to
            `SANDBOX_UID`; the caller maps uids through `info_fd`/`block_fd`.
        info_fd, block_fd: pipe ends for bwrap's --info-fd / --userns-block-fd handshake (root only).

    Returns:
        list of str, argv for `subprocess.Popen`.
    """
    layout = python_layout()
    uid = "0" if as_root else str(SANDBOX_UID)
    argv = [
        bwrap,
        "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
        "--unshare-cgroup-try",
        "--uid", uid, "--gid", uid,
        "--hostname", "sandbox",
        "--die-with-parent", "--new-session",
        "--clearenv",
        "--cap-drop", "ALL",
    ]  # fmt: skip
    if as_root:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        argv += ["--info-fd", str(info_fd), "--userns-block-fd", str(block_fd)]
    else:
        argv += ["--disable-userns"]  # bwrap refuses it together with --userns-block-fd (the root path)
    env = dict(ENV_ALLOW)
    env["PATH"] = f"{os.path.dirname(layout['executable'])}:{env['PATH']}"  # `python` in subprocesses is ours
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += system_binds()
    argv += ["--proc", "/proc", "--dev", "/dev"]
    tmp_size = str(int(limits.tmp_mb) * MB)
    argv += ["--perms", "1777", "--size", tmp_size, "--tmpfs", TMP_DIR]
    # POSIX shared memory (torch/multiprocessing) gets its own bounded tmpfs; bwrap's /dev is unbounded
    argv += ["--perms", "1777", "--size", tmp_size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
    for prefix in layout["prefixes"]:
        argv += _parent_dirs(prefix) + ["--ro-bind", prefix, prefix]
    exe_dir = os.path.dirname(layout["executable"])
    if not any(exe_dir == p or exe_dir.startswith(p + "/") for p in layout["prefixes"]) and not _under_usr(
        exe_dir
    ):
        argv += ["--ro-bind", exe_dir, exe_dir]
    argv += [
        "--perms",
        "0755",
        "--dir",
        "/opt/scratchlab",
        "--ro-bind",
        str(HOST_INSIDE_SCRIPT),
        INSIDE_SCRIPT,
    ]
    mpl_cache = matplotlib_cache(ENV_ALLOW)
    if mpl_cache:
        argv += ["--ro-bind", mpl_cache, MPL_CACHE_DIR]
    for m in mounts:
        argv += _parent_dirs(m.dest) + ["--ro-bind", m.src, m.dest]
    argv += ["--bind", str(work_dir), WORK_DIR, "--chdir", WORK_DIR]
    argv += ["--remount-ro", "/"]  # bwrap's own root tmpfs: nothing may be written outside /sandbox and /tmp
    argv += [layout["executable"], *PYTHON_FLAGS, INSIDE_SCRIPT, *inside_args(config)]
    return argv


@functools.lru_cache(maxsize=4)
def probe(bwrap: str | None = None) -> str | None:
    """Check that bwrap can create the namespaces we need. Returns None if it can, else the reason.

    The result is cached for the life of the process (a probe costs one bwrap start, ~10 ms).
    """
    bwrap = bwrap or find_bwrap()
    if bwrap is None:
        return FIX_BWRAP_MISSING
    argv = [
        bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--die-with-parent", "--cap-drop", "ALL", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev",
        *system_binds()[3:],
        "/usr/bin/env", "true",
    ]  # fmt: skip
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=dict(ENV_ALLOW))
    except (OSError, subprocess.TimeoutExpired) as e:
        return FIX_USERNS.format(reason=str(e))
    if r.returncode != 0:
        reason = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
        return FIX_USERNS.format(reason=reason[0])
    return None
