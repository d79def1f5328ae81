"""One program in a detached tmux pane, read and typed into as a person would (capture-pane, send-keys).

Each pane runs on its own tmux server (`tmux -L NAME`). On the shared default server, killing the last
session makes the server exit, and a `new-session` that reaches it while it exits fails ("server exited
unexpectedly"): CI once lost a run that way. A private server per pane cannot be reached by another test.
"""

from __future__ import annotations

import subprocess
import time
import uuid


class Pane:
    """`command` in a detached pane of `width` x `height` cells; `close()` stops its server."""

    def __init__(self, command: str, width: int = 150, height: int = 45):
        self.name = f"sl-{uuid.uuid4().hex[:8]}"
        r = self.tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), command)
        if r.returncode != 0:
            raise RuntimeError(f"tmux new-session failed ({r.returncode}): {r.stderr.strip()}")

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.name, *args], capture_output=True, text=True)

    def screen(self, history: int = 300) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name, "-S", f"-{history}").stdout

    def wait_for(self, text: str, timeout: float = 60.0, count: int = 1) -> float:
        """Seconds until `text` is on screen `count` times; AssertionError with the screen after `timeout`."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.screen().count(text) >= count:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{self.screen()}")

    def type(self, line: str) -> None:
        """`line` typed literally, then Enter."""
        self._send("-l", line)
        self._send("Enter")

    def key(self, key: str) -> None:
        """One tmux key name: "C-c", "Enter", "y"."""
        self._send(key)

    def _send(self, *keys: str) -> None:
        r = self.tmux("send-keys", "-t", self.name, *keys)
        if r.returncode != 0:
            raise RuntimeError(f"tmux send-keys failed ({r.returncode}): {r.stderr.strip()}")

    def close(self) -> None:
        self.tmux("kill-server")
