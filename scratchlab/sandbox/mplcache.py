"""A prebuilt matplotlib font cache for the sandbox (saves ~1.5 s on every run that plots).

matplotlib builds `fontlist-*.json` in $MPLCONFIGDIR on first import; the sandbox's /tmp is new each
run, so it would rebuild every time. This module builds the cache once per matplotlib version, in a
background thread, outside the sandbox (our own interpreter running `import matplotlib.font_manager`),
in the user's cache folder. `policy.bwrap_argv` mounts it read-only and `inside.py` copies it into
the private $MPLCONFIGDIR.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
import threading
from pathlib import Path

import platformdirs

from scratchlab.lab.atomic import atomic_dir

_MPL_BUILD_LOCK = threading.Lock()
_MPL_BUILD_STARTED: set[str] = set()
_MPL_READY: set[str] = set()


def matplotlib_cache(env: dict[str, str]) -> str | None:
    """A prebuilt matplotlib font cache to copy into the sandbox's /tmp, or None (not ready / no mpl).

    `env` is the sandbox's environment (`policy.ENV_ALLOW`): the cache is built under it, so the font
    list matches what sandboxed code sees. (Passed in, not imported: policy imports this module.)

    Without it every run rebuilds matplotlib's font list (~1.5 s). The cache lives in the user's cache
    folder (platformdirs), one per matplotlib version; it is built once, in a background thread, by
    this interpreter outside the sandbox (our own code), and mounted read-only (`MPL_CACHE_DIR`).
    """
    target = _matplotlib_cache_target()
    if target is None:
        return None
    if target in _MPL_READY or any(Path(target).glob("fontlist-*.json")):
        _MPL_READY.add(target)
        return target
    with _MPL_BUILD_LOCK:
        if target in _MPL_BUILD_STARTED:
            return None
        _MPL_BUILD_STARTED.add(target)
    threading.Thread(target=_build_matplotlib_cache, args=(Path(target), dict(env)), daemon=True).start()
    return None


@functools.lru_cache(maxsize=1)
def _matplotlib_cache_target() -> str | None:
    from importlib.metadata import PackageNotFoundError, version  # lazy: ~60 ms in a big venv, once

    try:
        mpl_version = version("matplotlib")
    except PackageNotFoundError:
        return None
    return str(Path(platformdirs.user_cache_dir("scratchlab")) / f"sandbox-matplotlib-{mpl_version}")


def _build_matplotlib_cache(target: Path, sandbox_env: dict[str, str]) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):  # no cache: matplotlib builds its own
        with atomic_dir(target, fsync=False) as tmp:  # a cache, rebuilt if a crash loses it
            env = {**sandbox_env, "MPLCONFIGDIR": str(tmp), "HOME": str(tmp)}
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env,
                           capture_output=True, timeout=300, check=True)  # fmt: skip
            for p in [tmp, *tmp.iterdir()]:
                p.chmod(0o755 if p.is_dir() else 0o644)
