"""The `run_python` tool and the `scratchlab sandbox` CLI, plus the refusal path without bubblewrap."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scratchlab.sandbox import Limits, SandboxConfigError, SandboxUnavailable, policy, run_code
from scratchlab.sandbox.errors import UnsafeSandboxWarning
from scratchlab.sandbox.policy import probe

REASON = probe()


def bwrap_only(fn):
    """Mark a test as needing bubblewrap; skip it (with the fix in the reason) only where it is unusable."""
    return pytest.mark.bwrap(
        pytest.mark.skipif(REASON is not None, reason=f"bubblewrap unusable: {REASON}")(fn)
    )


def _tool(tool_ctx):
    from scratchlab.tools.sandbox import make_tools

    (tool,) = make_tools(tool_ctx)
    return tool


# ---- refusal and configuration errors (no bubblewrap needed) ---------------------------------------------
def test_refuses_without_bwrap_and_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(policy, "find_bwrap", lambda: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install -y bubblewrap"):
        run_code("print(1)", tmp_path / "w")


def test_unsafe_mode_is_explicit_and_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(policy, "find_bwrap", lambda: None)
    for _ in range(2):  # every time, not once per call site
        with pytest.warns(UnsafeSandboxWarning, match="WITHOUT the sandbox"):
            r = run_code("print(6 * 7)", tmp_path / "w", unsafe_no_sandbox=True, limits=Limits(timeout_s=30))
    assert r.ok and r.stdout == "42\n" and not r.sandboxed
    assert any("WITHOUT the sandbox" in w for w in r.warnings)


@pytest.mark.parametrize("bad", [{"timeout_s": 0}, {"memory_mb": -5}, {"max_procs": "many"}, {"cpu_s": True}])
def test_invalid_limits_name_the_value(bad):
    (key,) = bad
    with pytest.raises(SandboxConfigError, match=key):
        Limits(**bad)


def test_invalid_mounts_are_refused(tmp_path):
    with pytest.raises(SandboxConfigError, match="does not exist"):
        policy.normalize_mounts([tmp_path / "missing"])
    with pytest.raises(SandboxConfigError, match="destination"):
        policy.normalize_mounts({"/usr": str(tmp_path)})


def test_tool_describes_limits_and_network(tool_ctx):
    tool = _tool(tool_ctx)
    assert tool.name == "run_python"
    assert (
        "NO network" in tool.description and "MiB" in tool.description and "/lab/metrics" in tool.description
    )


def test_tool_reports_unavailable_sandbox_to_the_model(tool_ctx, monkeypatch):
    monkeypatch.setattr(policy, "find_bwrap", lambda: None)
    out = _tool(tool_ctx).invoke({"code": "print(1)"})
    assert out.startswith("Error:") and "bubblewrap" in out


# ---- tool ------------------------------------------------------------------------------------------------
@bwrap_only
def test_tool_runs_code_and_registers_the_plot(tool_ctx):
    code = (
        "import matplotlib.pyplot as plt\nplt.plot([1, 2], [2, 1])\nplt.savefig('loss.png')\nprint('saved')"
    )
    out = _tool(tool_ctx).invoke({"code": code})
    assert out.startswith("ok") and "saved" in out and "loss.png" in out
    (plot,) = tool_ctx.registry.list_artifacts("plot")
    assert plot.path.endswith("loss.png") and plot.id in out
    with open(plot.path, "rb") as f:
        assert f.read(4) == b"\x89PNG"


@bwrap_only
def test_a_conversations_runs_share_their_files_and_no_other_conversation_sees_them(tool_ctx):
    import dataclasses

    first = _tool(dataclasses.replace(tool_ctx, thread_id="t-<b>1</b>\x1b[31m"))
    assert first.invoke({"code": "open('tri.txt', 'w').write('1 3 6')"}).startswith("ok")
    assert "1 3 6" in first.invoke(
        {"code": "print(open('tri.txt').read())"}
    )  # a fresh interpreter, same folder
    (f,) = tool_ctx.registry.list_artifacts("file")
    assert "<b>" not in f.path and "\x1b" not in f.path  # the folder is named by a hash of the thread
    other = _tool(dataclasses.replace(tool_ctx, thread_id="t-2"))
    assert "FileNotFoundError" in other.invoke({"code": "print(open('tri.txt').read())"})


@bwrap_only
def test_tool_sees_lab_metrics_read_only(tool_ctx):
    reg = tool_ctx.registry
    run_dir = tool_ctx.workspace.dir("runs") / "gpt-test"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"n_layer": 2}')
    art = reg.add_artifact("run", "gpt-test", run_dir, config={"n_layer": 2})
    for step, loss in [(0, 4.0), (10, 3.0), (20, 2.5)]:
        reg.log_metrics(art.id, step, val_loss=loss)
    code = (
        "import csv, json, os\n"
        f"rows = list(csv.DictReader(open('/lab/metrics/{art.id}.csv')))\n"
        "print('last', rows[-1]['value'])\n"
        "print('runs', [r['name'] for r in json.load(open('/lab/metrics/runs.json'))])\n"
        "print('config', json.load(open('/lab/runs/gpt-test/config.json')))\n"
        "try:\n    open('/lab/runs/gpt-test/evil', 'w')\nexcept OSError:\n    print('read-only')\n"
    )
    out = _tool(tool_ctx).invoke({"code": code})
    assert "last 2.5" in out and "runs ['gpt-test']" in out and "'n_layer': 2" in out and "read-only" in out
    assert not (run_dir / "evil").exists()


@bwrap_only
def test_lab_module_reads_runs_curves_and_plots(tool_ctx):
    reg = tool_ctx.registry
    arts = [reg.add_artifact("run", name, "", config={"n_layer": 2}) for name in ("old-run", "new-run")]
    for i, art in enumerate(arts):
        for step, loss in [(0, 4.0 - i), (10, 3.0 - i)]:
            reg.log_metrics(art.id, step, train_loss=loss + 0.1, val_loss=loss)
    code = (
        "from lab import runs, curve, plot_runs\n"
        "print('names', [r['name'] for r in runs()])\n"
        "print('curve', curve('old-run'))\n"
        "print('last', curve('last', 'train_loss')[1])\n"
        "plot_runs(2)\n"
        "try:\n    curve('nope')\nexcept LookupError as e:\n    print('err', e)\n"
    )
    out = _tool(tool_ctx).invoke({"code": code})
    assert "names ['new-run', 'old-run']" in out and "curve ([0, 10], [4.0, 3.0])" in out, out
    assert "last [3.1, 2.1]" in out and "saved loss.png: new-run:train_loss, new-run:val_loss" in out
    assert "err no run 'nope'; runs: new-run" in out
    (plot,) = reg.list_artifacts("plot")
    assert plot.path.endswith("loss.png")


@bwrap_only
def test_tool_session_keeps_variables_per_thread(tool_ctx):
    tool_ctx.thread_id = "t-1"
    tool = _tool(tool_ctx)
    try:
        assert tool.invoke({"code": "acc = 10", "session": True}).startswith("ok")
        assert "11" in tool.invoke({"code": "acc + 1", "session": True})
        assert "NameError" in tool.invoke({"code": "acc", "session": False})  # one-shot runs are fresh
    finally:
        tool_ctx.extras["sandbox_pool"].close_all()


@bwrap_only
def test_tool_output_is_compact(tool_ctx):
    out = _tool(tool_ctx).invoke({"code": "for i in range(5000):\n    print('line', i)"})
    assert len(out) < 1500 and "line 0" in out and "line 4999" in out and "cut" in out


# ---- CLI -------------------------------------------------------------------------------------------------
def _cli(args, tmp_path):
    from scratchlab.cli.main import app

    return CliRunner().invoke(app, ["--home", str(tmp_path / "ws"), "sandbox", *args])


@bwrap_only
def test_cli_run_code_json(tmp_path):
    res = _cli(["run", "-c", "print(6 * 7)", "--json", "--timeout", "20"], tmp_path)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["ok"] and data["stdout"] == "42\n" and data["sandboxed"]


@bwrap_only
def test_cli_run_file_exit_status_and_traceback(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("print('before')\nraise ValueError('nope')\n")
    res = _cli(["run", str(script), "--memory", "512"], tmp_path)
    assert res.exit_code == 1
    assert "before" in res.stdout and "ValueError: nope" in res.output and "bad.py" in res.output


def test_cli_needs_file_or_code(tmp_path):
    res = _cli(["run"], tmp_path)
    assert res.exit_code == 2 and "exactly one" in res.output


def test_cli_unsafe_prints_the_warning(tmp_path):
    res = _cli(["run", "-c", "print('x')", "--unsafe-no-sandbox"], tmp_path)
    assert res.exit_code == 0 and "WITHOUT the sandbox" in res.output


@bwrap_only
def test_cli_check_reports_every_guarantee(tmp_path):
    res = _cli(["check", "--json"], tmp_path)
    data = json.loads(res.stdout)
    names = [c["name"] for c in data["checks"]]
    assert any("network" in n for n in names) and any("read-only" in n for n in names)
    assert any("home" in n for n in names) and any("memory" in n for n in names)
    failing = [c for c in data["checks"] if not c["holds"]]
    assert data["ok"] and not failing, failing
    assert res.exit_code == 0


@bwrap_only
def test_failed_code_is_reported_as_an_error(tool_ctx):
    out = _tool(tool_ctx).invoke({"code": "raise SystemExit(3)"})
    assert out.startswith("Error: failed (exit code 3)")  # the agent fixes the code instead of moving on


def test_host_paths_of_lab_folders_become_their_mounts():
    from scratchlab.tools.sandbox import host_paths_to_lab

    mounts = {"/lab/runs": "/home/u/.scratchlab/runs", "/lab/plots": "/home/u/.scratchlab/plots"}
    code = "plt.imread('/home/u/.scratchlab/plots/run-1-loss.png'); open('/home/u/other.txt')"
    assert (
        host_paths_to_lab(code, mounts)
        == "plt.imread('/lab/plots/run-1-loss.png'); open('/home/u/other.txt')"
    )


def test_lab_module_finds_a_run_as_the_lab_lists_it(tmp_path, monkeypatch):
    # the 1.5B wrote curve('run-2 tiber2') after list_runs printed "run-2 tiber2: val 3.3722, ..."
    from scratchlab.tools.sandbox_lib import lab

    (tmp_path / "runs.json").write_text(
        json.dumps([{"id": "run-2", "name": "tiber2"}, {"id": "run-1", "name": "tiber"}])
    )
    monkeypatch.setattr(lab, "METRICS_DIR", str(tmp_path))
    assert lab.run("run-2 tiber2")["id"] == "run-2" and lab.run("tiber (run-1)")["id"] == "run-1"
    assert lab.run("tiber")["id"] == "run-1"
    with pytest.raises(LookupError, match="no run 'run-2 tiber'"):
        lab.run("run-2 tiber")  # an id and another run's name: neither
