"""The REPL driven through tmux on a fake model (`tests/lab_fakes.py`): "no" means no, Ctrl-C works
within a second, and the prompt stays usable while a job runs (issue 16 items 1 and 2).

The fake `slow_train` tool starts a real background job (a child process that sleeps 0.2 s per step)
and waits for it, as `train_gpt` does. Each test checks the workspace afterwards: jobs, and that every
tool call in the thread has a result message.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from tmux_pane import Pane

from scratchlab.lab.jobs import ACTIVE, cancel_job
from scratchlab.lab.registry import Registry
from scratchlab.lab.workspace import get_workspace

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
HERE = Path(__file__).resolve().parent
INTERRUPT_S = 5.0  # generous bound for "within 1 s" on a busy machine (measured by hand: see the report)


class Repl(Pane):
    """The fake-model REPL in a pane that outlives it, so its last screen can be read."""

    def __init__(self, home: Path, thread: str = "t-test"):
        self.home, self.thread = home, thread
        super().__init__(f"cd {HERE.parent} && PYTHONPATH={HERE.parent} {sys.executable} {HERE / 'lab_fakes.py'} "
                         f"repl {home} {thread}; echo exit=$?; sleep 600")  # fmt: skip

    def prompt_is_back(self) -> bool:
        """The last line above the status line is an empty `you>` prompt."""
        lines = [ln for ln in self.screen().splitlines() if ln.strip()]
        return len(lines) >= 2 and lines[-2].strip() == "you>"


def cleanup(r: Repl) -> None:
    r.close()
    reg = Registry.from_workspace(get_workspace(r.home))
    for job in reg.list_jobs():
        if job.status in ACTIVE:
            cancel_job(reg, job.id, timeout=10)


@pytest.fixture
def repl(tmp_path):
    r = Repl(tmp_path / "home")
    r.wait_for("you>", timeout=90)
    yield r
    cleanup(r)


def registry(r: Repl) -> Registry:
    return Registry.from_workspace(get_workspace(r.home))


def wait_running(r: Repl, job_id: str, timeout: float = 60.0) -> None:
    """Until the job has made progress, and the status line shows it."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            job = registry(r).get_job(job_id)
            if job.status == "running" and job.step > 0:
                r.wait_for(f"{job_id} fake ▕")
                return
        except LookupError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{job_id} did not start:\n{r.screen()}")


def thread_is_valid(r: Repl) -> list:
    """The thread's messages, after checking that every tool call has a result."""
    from langchain_core.messages import AIMessage, ToolMessage

    from scratchlab.agent import memory

    deadline = time.monotonic() + 5.0  # the screen can show a result before its checkpoint is written
    while True:
        saver, store, conn = memory.open_memory(get_workspace(r.home).db_path)
        try:
            tup = saver.get_tuple({"configurable": {"thread_id": r.thread, "checkpoint_ns": ""}})
            msgs = tup.checkpoint["channel_values"]["messages"] if tup else []
        finally:
            conn.close()
            store.conn.close()
        calls = [tc["id"] for m in msgs if isinstance(m, AIMessage) for tc in m.tool_calls]
        results = {m.tool_call_id for m in msgs if isinstance(m, ToolMessage)}
        if (calls and set(calls) <= results) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert calls and set(calls) <= results, msgs
    return msgs


@pytest.mark.parametrize("answer", ["n", "whatever", "C-c", "C-d"])
def test_declining_starts_no_job(repl, answer):
    repl.type("train big")
    repl.wait_for("Proceed? [y/N]")
    repl.wait_for("Nothing starts unless you answer yes.")
    screen = repl.screen()
    for row in ("you asked", "train big", "differs from defaults", "steps=50 (default 100)", "about 10m00s"):
        assert row in screen, screen
    assert "step_s" not in screen.split("differs from defaults")[1].split("\n")[0]  # only what differs
    if answer.startswith("C-"):
        repl.key(answer)
    else:
        repl.type(answer)
    repl.wait_for("cancelled by the user: slow_train was not started")
    repl.wait_for("Cancelled: nothing was started")
    time.sleep(1.0)  # a job, if one were started, would be in the registry by now
    assert registry(repl).list_jobs() == []
    thread_is_valid(repl)
    repl.type("/jobs")
    repl.wait_for("no jobs yet")


def test_yes_starts_the_job(repl):
    repl.type("train big")
    repl.wait_for("Proceed? [y/N]")
    repl.type("y")
    repl.wait_for("job-1 done after 50 steps", timeout=60)
    assert [j.status for j in registry(repl).list_jobs()] == ["done"]


def test_ctrl_c_during_a_training_call_leaves_the_job_running_and_the_prompt_usable(repl):
    repl.type("train slow 300")  # 60 s of job
    wait_running(repl, "job-1")
    for _ in range(3):  # several presses (they once left a progress bar redrawing over the prompt)
        repl.key("C-c")
    waited = repl.wait_for("left running in the background as job-1", timeout=INTERRUPT_S)
    repl.wait_for("turn cancelled", timeout=INTERRUPT_S)
    assert waited < INTERRUPT_S
    deadline = time.monotonic() + INTERRUPT_S
    while not repl.prompt_is_back() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert repl.prompt_is_back(), repl.screen()
    assert registry(repl).get_job("job-1").status == "running"
    repl.type("/jobs")
    repl.wait_for("job-1  fake  running")
    msgs = thread_is_valid(repl)
    assert "left running in the background as job-1" in msgs[-1].content  # the turn ended at the result
    screen = repl.screen()
    assert screen.count("turn cancelled") == 1 and "Traceback" not in screen and "Error" not in screen
    repl.type("hello")
    repl.wait_for("ok: hello")
    repl.type("/quit")
    repl.wait_for("exit=0", timeout=10)
    assert "job-1 keep(s) running in the background" in repl.screen()
    assert registry(repl).get_job("job-1").status == "running"


def test_slash_commands_and_new_requests_work_while_a_job_runs(repl):
    repl.type("train slow 300")
    wait_running(repl, "job-1")
    repl.type("/jobs")
    repl.wait_for("job-1  fake  running", timeout=INTERRUPT_S)
    # the turn still waits for its job; the toolbar is redrawn a moment after the table is printed
    repl.wait_for("running slow_train", timeout=INTERRUPT_S)
    repl.type("hello")  # a new request: the wait ends (the job keeps running) and the request runs next
    repl.wait_for("queued: runs after the current turn", timeout=INTERRUPT_S)
    repl.wait_for("left running in the background as job-1", timeout=INTERRUPT_S)
    repl.wait_for("ok: hello", timeout=30)
    assert registry(repl).get_job("job-1").status == "running"
    thread_is_valid(repl)
    repl.type("/jobs cancel job-1")  # stops it off the main thread: the prompt stays usable meanwhile
    repl.wait_for("job-1: cancelled", timeout=30)
    repl.type("train slow 300")  # a second turn waiting on a second job: /quit does not wait for it
    wait_running(repl, "job-2")
    repl.type("/quit")
    waited = repl.wait_for("exit=0", timeout=10)
    assert waited < QUIT_BOUND_S
    statuses = {j.id: j.status for j in registry(repl).list_jobs()}
    assert statuses == {"job-1": "cancelled", "job-2": "running"}


QUIT_BOUND_S = 8.0  # /quit waits at most QUIT_WAIT_S (5 s) for a cancelled turn; here it ends at once


def test_ctrl_c_during_a_long_answer(repl):
    repl.type("tell me a long story")  # 300 words, one every 0.2 s: a minute
    repl.wait_for("answering: word")  # the status line shows the tail: word0 scrolls out of it
    repl.key("C-c")
    repl.wait_for("turn cancelled", timeout=INTERRUPT_S)
    repl.type("hello")
    repl.wait_for("ok: hello", timeout=30)
    assert "word299" not in repl.screen()


def test_a_confirmation_left_open_by_ask_is_asked_when_the_thread_is_resumed(tmp_path):
    from lab_fakes import child_env, fake_session_class

    child_env()
    home = tmp_path / "home"
    lab = fake_session_class(str(home))()
    out = lab.ask("train big", thread_id="t-test")
    assert out["interrupt"]["action"] == "slow_train" and out["tool_calls"][0]["result"] is None
    lab.close()
    r = Repl(home, thread="t-test")
    try:
        r.wait_for("Proceed? [y/N]", timeout=90)
        r.wait_for("Nothing starts unless you answer yes.")
        r.type("no")
        r.wait_for("cancelled by the user: slow_train was not started")
        r.wait_for("Cancelled: nothing was started")
        assert registry(r).list_jobs() == []
        thread_is_valid(r)
    finally:
        cleanup(r)
