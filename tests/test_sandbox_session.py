"""Sessions: variables persist, errors do not kill the interpreter, timeouts restart it and say so."""

from __future__ import annotations

import os
import time

import pytest

from scratchlab.sandbox import Limits, new_work_dir
from scratchlab.sandbox.policy import probe
from scratchlab.sandbox.session import Session, SessionPool

REASON = probe()
pytestmark = [
    pytest.mark.bwrap,
    pytest.mark.skipif(REASON is not None, reason=f"bubblewrap unusable: {REASON}"),
]
LIMITS = dict(timeout_s=10, cpu_s=5, memory_mb=1024, max_procs=32, max_disk_mb=16, max_file_mb=8, tmp_mb=16,
              max_output_bytes=4000)  # fmt: skip


@pytest.fixture
def session(tmp_path):
    s = Session(new_work_dir(tmp_path, "session"), limits=Limits(**LIMITS))
    yield s
    s.close()


def test_variables_persist_and_last_expression_is_shown(session):
    assert session.run("x = 41\ny = [1, 2]").ok
    r = session.run("x + 1")
    assert r.ok and r.stdout == "42\n"
    assert session.run("y.append(3); len(y)").stdout == "3\n"


def test_output_of_each_call_is_separate_including_subprocesses(session):
    r1 = session.run("print('one'); import os; os.system('echo from-shell')")
    r2 = session.run("print('two')")
    assert r1.stdout.splitlines()[:2] == ["one", "from-shell"]
    assert r2.stdout == "two\n"


def test_exception_keeps_the_session_alive(session):
    session.run("z = 'kept'")
    r = session.run("def f():\n    raise KeyError('boom')\nf()")
    assert not r.ok and "KeyError: 'boom'" in r.stderr and "raise KeyError" in r.stderr
    assert session.run("z").stdout == "'kept'\n"


def test_syntax_error_is_reported(session):
    r = session.run("def (:")
    assert not r.ok and "SyntaxError" in r.stderr


def test_timeout_kills_restarts_and_says_variables_are_gone(session):
    session.run("kept = 1")
    r = session.run("import time\ntime.sleep(30)", timeout_s=1)
    assert r.timed_out and r.killed_by == "timeout" and not r.ok
    assert "restarted" in r.stderr and "variables are gone" in r.stderr
    after = session.run("print('alive'); 'kept' in globals()")
    assert after.ok and after.stdout == "alive\nFalse\n"


def test_interpreter_exit_is_reported_and_next_call_restarts(session):
    r = session.run("import os\nos._exit(3)")
    assert not r.ok and r.exit_code == 3 and "died" in r.stderr
    r = session.run("print('fresh')")
    assert r.ok and r.stdout == "fresh\n" and "fresh one was started" in r.stderr


def test_memory_error_does_not_end_the_session(session):
    session.run("a = 5")
    r = session.run("b = bytearray(8 * 1024**3)")
    assert r.memory_exceeded and r.killed_by == "memory"
    assert session.run("a").stdout == "5\n"


def test_cpu_limit_per_call(tmp_path):
    s = Session(new_work_dir(tmp_path, "session"), limits=Limits(**{**LIMITS, "cpu_s": 1, "timeout_s": 20}))
    try:
        s.run("kept = 7")
        r = s.run("while True:\n    pass\n")
        assert r.killed_by == "cpu" and not r.timed_out
        assert s.run("kept").stdout == "7\n"  # the session survived
    finally:
        s.close()


def test_files_are_reported_per_call(session):
    r = session.run("open('a.txt', 'w').write('x')")
    assert [f.path for f in r.files] == ["a.txt"] and r.files[0].status == "new"
    assert session.run("print(1)").files == []
    r = session.run("open('a.txt', 'w').write('longer')")
    assert [(f.path, f.status) for f in r.files] == [("a.txt", "modified")]


def test_reset_clears_state_but_keeps_files(session):
    session.run("v = 1\nopen('keep.txt', 'w').write('k')")
    session.reset()
    r = session.run("import os\nprint('v' in globals(), os.path.exists('keep.txt'))")
    assert r.stdout == "False True\n"


def test_idle_timeout_ends_the_interpreter(tmp_path):
    s = Session(new_work_dir(tmp_path, "session"), limits=Limits(**LIMITS), idle_timeout_s=0.5)
    try:
        s.run("v = 1")
        deadline = time.monotonic() + 10
        while s.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not s.alive
        r = s.run("print('v' in globals())")
        assert r.stdout == "False\n" and "fresh one was started" in r.stderr
    finally:
        s.close()


def test_session_is_isolated_like_a_run(session):
    r = session.run(
        "import os, socket\nprint(os.getuid())\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\nexcept OSError:\n    print('offline')"
    )
    assert r.stdout.split() == ["65534", "offline"]


def test_pool_keeps_one_session_per_key(tmp_path):
    pool = SessionPool(tmp_path, limits=Limits(**LIMITS), max_sessions=2)
    try:
        pool.get("thread-a").run("who = 'a'")
        pool.get("thread-b").run("who = 'b'")
        assert pool.get("thread-a").run("who").stdout == "'a'\n"
        assert pool.get("thread-b").run("who").stdout == "'b'\n"
        assert pool.get("thread-a").work_dir != pool.get("thread-b").work_dir
    finally:
        pool.close_all()


def test_session_started_from_a_short_lived_thread_survives_it(session):
    import threading

    t = threading.Thread(target=lambda: session.run("born = 'in a thread'"))
    t.start()
    t.join()
    time.sleep(0.3)  # bwrap's --die-with-parent would fire here if tied to that thread
    assert session.alive
    assert session.run("born").stdout == "'in a thread'\n"


def test_endless_output_in_a_session_is_capped(session):
    r = session.run("while True:\n    print('x' * 1000)")
    assert not r.ok and r.killed_by == "file_size" and r.truncated
    assert len(r.stdout) < 4000 + 200 and "bytes of output dropped" in r.stdout
    assert session.run("print(2)").stdout == "2\n"


def test_creating_many_files_in_a_session_is_stopped(tmp_path):
    s = Session(new_work_dir(tmp_path, "session"), limits=Limits(**{**LIMITS, "max_files": 1000}))
    try:
        r = s.run("for i in range(200_000):\n    open(f'f{i}', 'w').close()\n")
        assert not r.ok and r.killed_by == "files", (r.killed_by, r.stderr[-300:])
        assert len(os.listdir(s.work_dir)) < 20_000
        assert any("1000 files and folders" in w for w in r.warnings)
    finally:
        s.close()
