"""A REPL attached to a running `scratchlab serve`, driven through tmux as a user would (issue 18 item 4).

The server is a real process (`tests/serve_fakes.py`: `serve()` on the fake lab with the rule model and
the `slow_train` tool); the REPL (`lab_fakes.py repl`) finds it through serve.json and runs its turns
there. Its own confirmations and Ctrl-C must work as in a REPL that holds the model: "no" declines and
starts nothing, Ctrl-C during a job wait cancels the turn at once and leaves the job running, and after
/quit the server is still there for the next client.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_repl_tmux import INTERRUPT_S, Repl, cleanup, registry, thread_is_valid, wait_running

from scratchlab.server import client

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
HERE = Path(__file__).resolve().parent
FAKE_MODEL = "fake rules"


@pytest.fixture
def server(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    env.pop(client.NO_SERVER_ENV, None)
    proc = subprocess.Popen([sys.executable, str(HERE / "serve_fakes.py"), str(home)], env=env, cwd=HERE.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 90
    while (url := client.find_server(home, FAKE_MODEL)) is None:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the fake server did not start"
        time.sleep(0.2)
    yield home, url, proc
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert not (home / "serve.json").exists(), "the server removes serve.json when it stops"


@pytest.fixture
def attached(server):
    home, url, _ = server
    r = Repl(home)
    r.wait_for("you>", timeout=90)
    assert f"kept loaded by scratchlab serve at {url}" in r.screen()
    yield r
    cleanup(r)


@pytest.mark.parametrize("answer", ["n", "C-c"])
def test_no_at_the_confirmation_declines_through_the_server(attached, answer):
    attached.type("train big")
    attached.wait_for("Proceed? [y/N]")
    attached.key(answer) if answer.startswith("C-") else attached.type(answer)
    attached.wait_for("cancelled by the user: slow_train was not started")
    attached.wait_for("Cancelled: nothing was started")
    time.sleep(1.0)  # a job, if one were started, would be in the registry by now
    assert registry(attached).list_jobs() == []
    thread_is_valid(attached)


def test_ctrl_c_during_a_job_cancels_the_served_turn_and_the_server_stays(attached, server):
    home, url, proc = server
    attached.type("train slow 300")  # 60 s of job, started by the server process
    wait_running(attached, "job-1")
    attached.key("C-c")
    waited = attached.wait_for("left running in the background as job-1", timeout=INTERRUPT_S)
    attached.wait_for("turn cancelled", timeout=INTERRUPT_S)
    assert waited < INTERRUPT_S
    assert registry(attached).get_job("job-1").status == "running"
    msgs = thread_is_valid(attached)
    assert "left running in the background as job-1" in msgs[-1].content
    attached.type("hello")  # the next turn runs through the server as well
    attached.wait_for("ok: hello")
    attached.type("/quit")
    attached.wait_for("exit=0", timeout=10)
    assert "Traceback" not in attached.screen()
    assert proc.poll() is None and client.find_server(home, FAKE_MODEL) == url, "the server outlives the REPL"
