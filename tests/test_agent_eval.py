"""The agent evaluation: case files, argument normalisation and matching, scoring, summaries, and the
benchmark harness driven by a scripted fake session (no model is loaded)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from scratchlab.lab.registry import Registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import agent_scoring as ev  # noqa: E402  (benchmarks/ is scripts, not a package)

from scratchlab.lab.workspace import get_workspace

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ROOT / "benchmarks" / "data" / "commands.jsonl"
MULTISTEP = ROOT / "benchmarks" / "data" / "multistep.jsonl"

NUMBER_RE = re.compile(r"\d+(?:\.\d+)?(?:e-?\d+)?k?|\.\d+")
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "single": 1}
TOK1 = {"kind": "tokenizer", "name": "bpe512-shakespeare"}
TOK2 = {"kind": "tokenizer", "name": "bpe1k-notes"}
RUN1 = {"kind": "run", "name": "shakes-4l"}
JOB = {"kind": "job", "name": "gpt", "status": "running"}


def load_harness():
    spec = importlib.util.spec_from_file_location("agent_eval", ROOT / "benchmarks" / "agent_eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def case(action, args=None, category="command", state=None, request="r", cid="c-1", **extra):
    c = {
        "id": cid,
        "category": category,
        "request": request,
        "expected": {"action": action, "args": args or {}},
    }
    if state:
        c["state"] = state
    c.update(extra)
    ev.validate_case(c)
    return c


# ---- the shipped data --------------------------------------------------------------------------
def test_command_set_is_large_varied_and_covers_every_tool():
    cases = ev.load_cases(COMMANDS)
    assert len(cases) >= 170
    cats = Counter(c["category"] for c in cases)
    assert set(cats) == set(ev.CATEGORIES)
    assert min(cats.values()) >= 10
    tools = Counter(c["expected"]["action"] for c in cases)
    for tool in ev.TOOL_DEFAULTS:
        assert tools[tool] >= 2, f"{tool} has {tools[tool]} cases"
    n_test = sum(c["split"] == "test" for c in cases)
    assert 25 <= n_test <= 45
    assert sum(len(ev.load_cases(COMMANDS, split=s)) for s in ev.SPLITS) == len(cases)
    own_files = [s for s in ev.SPLITS if (COMMANDS.parent / f"commands_{s}.jsonl").exists()]
    assert {
        "test9",
        "test10",
        "test11",
        "test12",
        "test13",
        "test14",
        "test15",
        "test16",
        "test17",
        "test18",
        "test19",
        "test20",
        "test21",
        "test22",
        "test23",
        "test24",
        "test25",
        "test26",
        "test27",
        "test28",
        "test29",
    } <= set(own_files)
    assert all(
        sum(c["split"] == s for c in cases) >= 25
        for s in ev.SPLITS
        if s.startswith("test") and s not in own_files
    )
    # the splits with files of their own load and validate (names, matchers) in full
    for s in own_files:
        own = ev.load_cases(COMMANDS.parent / f"commands_{s}.jsonl", split=s)
        assert len(own) >= 50 and {c["split"] for c in own} == {s}
    # every underspecified request expects a clarifying question, every chit-chat an answer
    assert all(c["expected"]["action"] == "clarify" for c in cases if c["category"] == "underspecified")
    assert all(c["expected"]["action"] == "answer" for c in cases if c["category"] in ("chitchat", "general"))


def test_expected_args_are_reachable_from_the_request():
    """Literal numbers in expected args occur in the request (after shorthand), so a case cannot demand a guess."""
    for c in ev.load_cases(COMMANDS):
        text = c["request"].lower()
        nums = [ev.normalise_value(t) for t in NUMBER_RE.findall(text)]
        nums += [n for w, n in NUMBER_WORDS.items() if re.search(rf"\b{w}\b", text)]
        for arg, spec in c["expected"]["args"].items():
            if isinstance(spec, int | float) and not isinstance(spec, bool) and arg not in ("job_id",):
                assert any(ev.values_equal(spec, n) for n in nums if isinstance(n, int | float)), (
                    c["id"],
                    arg,
                    spec,
                )


def test_multistep_tasks_are_valid_and_cheap():
    tasks = [json.loads(line) for line in MULTISTEP.read_text().splitlines() if line.strip()]
    assert len(tasks) == 20
    assert len({t["id"] for t in tasks}) == 20
    for t in tasks:
        assert len(t["expected_tools"]) >= 1 and set(t["expected_tools"]) <= set(ev.TOOL_DEFAULTS)
        if "train_gpt" in t["expected_tools"] or "ablate_gpt" in t["expected_tools"]:
            steps = [int(n) for n in re.findall(r"(\d+) (?:steps|iterations)", t["request"])]
            assert steps and max(steps) <= 50, t["id"]
        if "{dir}" in t["request"]:
            assert t.get("files"), t["id"]


def test_load_cases_rejects_malformed_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"id": "x", "category": "command", "request": "r", "expected": {"action": "fly"}}) + "\n"
    )
    with pytest.raises(ev.CaseError, match="unknown expected action 'fly'"):
        ev.load_cases(bad)
    bad.write_text(
        json.dumps(
            {
                "id": "x",
                "category": "command",
                "request": "r",
                "expected": {"action": "train_gpt", "args": {"layers": 4}},
            }
        )
    )
    with pytest.raises(ev.CaseError, match="no argument"):
        ev.load_cases(bad)
    good = {"id": "x", "category": "chitchat", "request": "hi", "expected": {"action": "answer"}}
    bad.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(ev.CaseError, match="duplicate"):
        ev.load_cases(bad)
    bad.write_text("{not json\n")
    with pytest.raises(ev.CaseError, match="not valid JSON"):
        ev.load_cases(bad)


# ---- normalisation and matching ----------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, want",
    [("2k", 2000), ("1.5k", 1500), ("1,000", 1000), ("2000 steps", 2000), (" 4 ", 4), ("3e-4", 0.0003),
     (2000.0, 2000), ("1M", 1_000_000), ("Shakespeare", "shakespeare"), ("'notes.txt'", "notes.txt"),
     ("../shared/seeds", "seeds"), ("./papers/", "papers"), ("/home/u/data/notes.txt", "notes.txt"),
     ("True", True), ("job-3", "job-3"), ([" 1", 2], [1, 2]), ("lr=1e-3,3e-3", "lr=0.001,0.003"),
     ("n_layer = 1, 2", "n_layer=1,2"), ("pattern=gpt2,gpt4", "pattern=gpt2,gpt4")],
)  # fmt: skip
def test_normalise_value(raw, want):
    got = ev.normalise_value(raw)
    assert (
        ev.values_equal(want, got)
        and type(got) is type(want)
        or (isinstance(want, float) and isinstance(got, float))
    )


def test_match_arg_matchers():
    assert ev.match_arg("query", {"contains": "QLoRA"}, "what is qlora")
    assert not ev.match_arg("query", {"contains": "QLoRA"}, None)
    assert ev.match_arg("fact", {"contains": ["6", "head"]}, "User prefers 6 attention heads.")
    assert not ev.match_arg("fact", {"contains": ["6", "head"]}, "User prefers 6 layers.")
    assert ev.match_arg("query", {"contains_any": ["learning rate", "lr"]}, "best lr")
    assert ev.match_arg("mode", {"one_of": ["bm25", "lexical"]}, "BM25")
    assert ev.match_arg("code", {"present": True}, "print(1)")
    assert not ev.match_arg("code", {"present": True}, "")
    assert ev.match_arg("switches", ["rope", "relu"], ["relu", "rope"])  # a set
    assert ev.match_arg("switches", ["mlp_ratio=2"], ["mlp_ratio = 2"])
    assert ev.match_arg("ids", [1, 2, 3], ["1", "2", "3"])
    assert not ev.match_arg("ids", [1, 2, 3], [3, 2, 1])  # order matters for ids
    assert ev.match_arg("lr", 0.0003, "3e-4")
    assert not ev.match_arg("lr", 0.0003, 0.003)
    assert ev.match_arg("max_iters", 2000, "2k")
    assert ev.match_arg("dataset", "data/notes.txt", "notes.txt")
    # a list of references ("@2" in a conversation becomes a matcher): each item by its matcher
    assert ev.match_arg("runs", [{"one_of": ["gpt-2", "run-2"]}], ["gpt-2"])
    assert not ev.match_arg("runs", [{"one_of": ["gpt-2", "run-2"]}], ["gpt-1"])
    # a sweep's setting under any of the engine's names for it
    assert ev.match_arg("search", ["learning_rate"], ["lr"])
    assert ev.match_arg("search", ["vocab=256,512"], ["vocab_size=256,512"])
    assert not ev.match_arg("search", ["learning_rate"], ["dropout"])
    # one setting's values written as several specs: the engine searches them all (parse_space)
    assert ev.match_arg("search", ["dropout=0,0.15,0.3"], ["dropout=0", "dropout=0.15", "dropout=0.3"])
    assert not ev.match_arg("search", ["dropout=0,0.15,0.3"], ["dropout=0", "dropout=0.3"])
    # a search space is keyed by setting: the order of its specs means nothing (parse_space's dict)
    assert ev.match_arg("search", ["n_layer=2,4", "dropout=0..0.2"], ["dropout=0..0.2", "n_layer=2,4"])
    assert not ev.match_arg("search", ["n_layer=2,4", "dropout=0..0.2"], ["n_layer=2,4"])


def test_state_ids_match_the_registry(tmp_path):
    """The ids the scorer assumes are the ids the harness's registry really gives."""
    harness = load_harness()
    reg = Registry.from_workspace(get_workspace(tmp_path / "h").ensure())
    state = [TOK1, RUN1, JOB, TOK2]
    for _ in range(2):  # a second reset must give the same ids again
        harness.reset_state(reg, state)
        got = {a.name: a.id for a in reg.list_artifacts()} | {j.kind: j.id for j in reg.list_jobs()}
        assert got == {e["name"]: e["id"] for e in ev.state_ids(state)}
    assert got == {
        "bpe512-shakespeare": "tokenizer-1",
        "shakes-4l": "run-2",
        "gpt": "job-1",
        "bpe1k-notes": "tokenizer-3",
    }
    harness.reset_state(reg, None)
    assert reg.list_artifacts() == [] and reg.list_jobs() == []


def test_references_resolve_through_state():
    state = [TOK1, TOK2]
    # "last" is the newest tokenizer: its name, its id, or a latest-word
    for got in ("last", "latest", "bpe1k-notes", "tokenizer-2"):
        assert ev.match_arg("tokenizer", "last", got, state), got
        assert ev.match_arg("tokenizer", "bpe1k-notes", got, state), got
    for got in ("bpe512-shakespeare", "tokenizer-1"):
        assert not ev.match_arg("tokenizer", "last", got, state)
        assert ev.match_arg("tokenizer", "bpe512-shakespeare", got, state)
    assert not ev.match_arg("tokenizer", "bpe512-shakespeare", "last", state)
    assert ev.match_arg("job_id", "job-1", "job-1", [RUN1, JOB])
    # a job id the case's lab declares is the id the harness gives that job
    declared = load_harness().lab_to_state(
        {"jobs": [{"id": "job-2", "run": "a"}, {"id": "job-6", "run": "b"}]}
    )
    assert ev.match_arg("job_id", "job-6", "job-2", declared)
    assert not ev.match_arg("job_id", "job-6", "job-1", declared)
    # a run's val loss is a result, kept where the product keeps it, not among its settings
    (run,) = load_harness().lab_to_state({"runs": [{"name": "gpt-41", "n_layer": 4, "val_loss": 1.95}]})
    assert run["config"] == {"n_layer": 4} and run["metrics"] == {"val_loss": 1.95}


# ---- classifying and scoring -------------------------------------------------------------------
def test_predicted_action_rules():
    assert ev.predicted_action([{"name": "train_gpt", "args": {}}], "") == "train_gpt"
    assert ev.predicted_action([], "Hi! What shall we build today?", expected_action="answer") == "answer"
    assert ev.predicted_action([], "Which text should I encode?", expected_action="clarify") == "clarify"
    assert ev.predicted_action([], "Encoding needs a text.", expected_action="clarify") == "answer"
    assert ev.predicted_action([], "Clarify: which file?", expected_action="answer") == "clarify"
    assert ev.predicted_action([], "Sure.", expected_action="answer", reported_action="clarify") == "clarify"
    assert ev.predicted_action([{"name": "clarify", "args": {}}], "") == "clarify"


def test_score_case_fills_defaults_and_reports_wrong_args():
    c = case("train_gpt", {"dataset": "shakespeare", "n_layer": 4, "max_iters": 2000})
    r = ev.score_case(
        c, [{"name": "train_gpt", "args": {"n_layer": "4", "max_iters": "2k"}}], "", seconds=1.5
    )
    assert r["first_action_ok"] and r["args_ok"] and r["ok"] and not r["no_tool"]  # dataset: default
    r = ev.score_case(c, [{"name": "train_gpt", "args": {"n_layer": 4, "max_iters": 200}}], "")
    assert r["first_action_ok"] and r["args_ok"] is False and not r["ok"]
    assert r["arg_errors"] == {"max_iters": {"expected": 2000, "got": 200}}
    r = ev.score_case(c, [{"name": "train_tokenizer", "args": {}}], "")
    assert not r["first_action_ok"] and r["args_ok"] is None and r["predicted_action"] == "train_tokenizer"
    r = ev.score_case(
        case("encode_text", {"text": {"contains": "hi"}}), [{"name": "encode_text", "args": {}}], ""
    )
    assert r["arg_errors"] == {"text": {"expected": {"contains": "hi"}, "got": None}}


def test_score_case_compares_the_arguments_the_tool_would_run_with():
    c = case("train_tokenizer", {"vocab_size": 456})
    assert ev.score_case(c, [{"name": "train_tokenizer", "args": {"num_merges": 200}}], "")["args_ok"]
    assert not ev.score_case(c, [{"name": "train_tokenizer", "args": {"num_merges": 300}}], "")["args_ok"]


def test_score_case_plan():
    c = case("train_tokenizer", {}, category="multistep", expected_tools=["train_tokenizer", "train_gpt"])
    assert ev.score_case(c, [{"name": "train_tokenizer"}], "")["plan_ok"] is None
    assert ev.score_case(c, [{"name": "train_tokenizer"}, {"name": "train_gpt"}], "")["plan_ok"] is True
    assert ev.score_case(c, [{"name": "train_tokenizer"}, {"name": "sample_gpt"}], "")["plan_ok"] is False


def test_score_multistep_allows_retries_but_not_errors():
    task = {"id": "ms", "request": "r", "expected_tools": ["train_tokenizer", "encode_text"]}
    calls = [{"name": "train_tokenizer", "result": "tokenizer-1 ..."}, {"name": "encode_text", "result": "Error: no text"},
             {"name": "encode_text", "result": "ids [1, 2]"}]  # fmt: skip
    r = ev.score_multistep(task, calls)
    assert r["completed"] and r["errors"] == 1
    r = ev.score_multistep(task, calls[:2])
    assert not r["completed"] and r["missing"] == ["encode_text"]
    assert not ev.score_multistep(task, [{"name": "encode_text"}, {"name": "train_tokenizer"}])["completed"]


def test_summarise_by_hand():
    results = [
        ev.score_case(
            case("train_gpt", {"n_layer": 4}, cid="a"),
            [{"name": "train_gpt", "args": {"n_layer": 4}}],
            "",
            1.0,
        ),
        ev.score_case(
            case("train_gpt", {"n_layer": 4}, cid="b"),
            [{"name": "train_gpt", "args": {"n_layer": 2}}],
            "",
            2.0,
        ),
        ev.score_case(case("list_runs", cid="c"), [{"name": "list_artifacts", "args": {}}], "", 3.0),
        ev.score_case(case("answer", category="chitchat", cid="d"), [], "Hello!", 0.5),
        ev.score_case(
            case("answer", category="chitchat", cid="e"), [{"name": "recall", "args": {}}], "", 0.7
        ),
        ev.score_case(case("clarify", category="underspecified", cid="f"), [], "Which text?", 0.4),
    ]
    s = ev.summarise(results)
    cmd, chat, under, allr = (
        s["categories"]["command"],
        s["categories"]["chitchat"],
        s["categories"]["underspecified"],
        s["overall"],
    )
    assert cmd["n"] == 3 and cmd["first_action"] == pytest.approx(2 / 3, abs=1e-4)
    assert (
        cmd["args"] == 0.5 and cmd["n_args"] == 2 and cmd["action_and_args"] == pytest.approx(1 / 3, abs=1e-4)
    )
    assert cmd["median_s"] == 2.0 and cmd["no_tool"] is None
    assert chat["no_tool"] == 0.5 and chat["first_action"] == 0.5
    assert under["clarify_rate"] == 1.0
    assert allr["n"] == 6 and allr["first_action"] == pytest.approx(4 / 6, abs=1e-4)
    assert allr["p90_s"] == pytest.approx(2.5)  # sorted [.4 .5 .7 1 2 3], k = 4.5
    assert s["meets"] == {"first_action": False, "action_and_args": False, "no_tool": False, "median_s": True}
    md = ev.render_markdown(s)
    assert "| command | 3 | 67% | 50% (2) | 33% |" in md
    fail = ev.render_failures(results)
    assert "(3 of 6)" in fail and "`b`" in fail and "`c`" in fail and "`e`" in fail and "`a`" not in fail


# ---- the harness with a scripted fake session --------------------------------------------------
class FakeSession:
    """Replays canned replies keyed by request; checks the lab state the harness registered."""

    def __init__(self, home, replies):
        self.registry = Registry.from_workspace(get_workspace(home))
        self.replies = replies
        self.asked = []

    def ask(self, text, thread_id=None, dry_run=False):
        self.asked.append((text, dry_run))
        if text == "hi":
            return {"answer": "Hello!", "thread": "t", "tool_calls": [], "seconds": 0.01}
        reply = self.replies[text]
        return reply(self.registry) if callable(reply) else reply


TINY_CASES = [
    {"id": "t-1", "category": "command", "request": "train a 2-layer GPT", "expected": {"action": "train_gpt", "args": {"n_layer": 2}}},
    {"id": "t-2", "category": "chitchat", "request": "hello", "expected": {"action": "answer", "args": {}}},
    {"id": "t-3", "category": "reference", "request": "encode 'x' with that tokenizer", "state": [TOK1, TOK2],
     "expected": {"action": "encode_text", "args": {"text": {"contains": "x"}, "tokenizer": "bpe1k-notes"}}},
    {"id": "t-4", "category": "underspecified", "request": "decode them", "split": "test", "expected": {"action": "clarify", "args": {}}},
]  # fmt: skip


def newest_tokenizer_call(registry):
    """The fake 'resolves' the reference from the registry, as the real agent would."""
    newest = registry.list_artifacts("tokenizer")[0]
    return {
        "answer": "",
        "tool_calls": [{"name": "encode_text", "args": {"text": "x", "tokenizer": newest.id}}],
    }


REPLIES = {
    "train a 2-layer GPT": {"answer": "", "tool_calls": [{"name": "train_gpt", "args": {"n_layer": 3}}]},
    "hello": {"answer": "Hi! How can I help?", "tool_calls": []},
    "encode 'x' with that tokenizer": newest_tokenizer_call,
    "decode them": {"answer": "Which token ids should I decode?", "tool_calls": []},
}


def test_harness_end_to_end_with_fake_session(tmp_path, capsys):
    harness = load_harness()
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in TINY_CASES))
    sessions = []

    def factory(home, model):
        sessions.append(FakeSession(home, REPLIES))
        return sessions[-1]

    out = tmp_path / "results"
    payload = harness.main(
        ["--model", "fake:1", "--split", "all", "--data", str(data), "--out-dir", str(out)],
        session_factory=factory,
    )
    by_id = {r["id"]: r for r in payload["results"]}
    assert [r["ok"] for r in payload["results"]] == [False, True, True, True]
    assert by_id["t-1"]["arg_errors"]["n_layer"] == {"expected": 2, "got": 3}
    assert by_id["t-3"]["tool_calls"][0]["args"]["tokenizer"] == "tokenizer-2"
    assert by_id["t-4"]["predicted_action"] == "clarify"
    assert all(dry for _, dry in sessions[0].asked)
    assert (
        payload["summary"]["overall"]["first_action"] == 1.0
        and payload["summary"]["overall"]["action_and_args"] == 0.75
    )
    files = {p.name for p in out.iterdir()}
    assert {"agent_eval_fake-1_all.json", "agent_eval_fake-1_all.md", "agent_eval_failures_fake-1_all.md",
            "agent_eval.json", "agent_eval.md"} <= files  # fmt: skip
    assert "`t-1`" in (out / "agent_eval_failures_fake-1_all.md").read_text()
    combined = json.loads((out / "agent_eval.json").read_text())
    assert combined["fake-1_all"]["summary"]["overall"]["n"] == 4
    # split selection: only the held-out case
    payload = harness.main(
        ["--model", "fake:1", "--split", "test", "--data", str(data), "--out-dir", str(out)],
        session_factory=factory,
    )
    assert [r["id"] for r in payload["results"]] == ["t-4"]
    assert set(json.loads((out / "agent_eval.json").read_text())) == {"fake-1_all", "fake-1_test"}


def test_harness_multistep_with_fake_session(tmp_path):
    harness = load_harness()
    tasks = tmp_path / "ms.jsonl"
    rows = [
        {"id": "ms-1", "request": "tok then encode", "expected_tools": ["train_tokenizer", "encode_text"]},
        {"id": "ms-2", "request": "index {dir}/docs then search", "expected_tools": ["index_documents", "search_documents"],
         "files": {"docs/a.md": "hello"}},
    ]  # fmt: skip
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen = {}

    def index_reply(registry):
        return {"answer": "", "tool_calls": [{"name": "index_documents", "args": {}, "result": "index-1"}],
                "tool_results": None}  # fmt: skip

    class MultiFake(FakeSession):
        def ask(self, text, thread_id=None, dry_run=False):
            if text.startswith("index "):
                folder = Path(text.split()[1]).parent / "docs"
                seen["file"] = (folder / "a.md").read_text()
                return index_reply(self.registry)
            if text == "tok then encode":
                return {"answer": "done", "tool_calls": [{"name": "train_tokenizer", "args": {}}, {"name": "encode_text", "args": {}}],
                        "tool_results": ["tokenizer-1", "[1, 2]"]}  # fmt: skip
            return super().ask(text, thread_id, dry_run)

    payload = harness.main(
        [
            "--no-routing",
            "--multistep",
            "--multistep-data",
            str(tasks),
            "--out-dir",
            str(tmp_path / "o"),
            "--data",
            str(COMMANDS),
        ],
        session_factory=lambda home, model: MultiFake(home, {}),
    )
    ms = {m["id"]: m for m in payload["multistep"]}
    assert (
        ms["ms-1"]["completed"]
        and not ms["ms-2"]["completed"]
        and ms["ms-2"]["missing"] == ["search_documents"]
    )
    assert seen["file"] == "hello" and "{dir}" not in ms["ms-2"]["request"]
    assert payload["summary"]["multistep"] == {
        "n": 2,
        "completed": 1,
        "completion_rate": 0.5,
        "median_s": pytest.approx(0, abs=1),
    }


def test_cli_path_parses_json_and_scores(tmp_path, monkeypatch):
    harness = load_harness()
    assert harness.parse_cli_json(
        'loading...\n{"answer": "", "tool_calls": [{"name": "list_runs", "args": {}}]}\n'
    )["tool_calls"]
    pretty = 'noise\n{\n  "answer": "hi",\n  "thread": "t",\n  "tool_calls": []\n}\n'  # emit_json indents
    assert harness.parse_cli_json(pretty) == {"answer": "hi", "thread": "t", "tool_calls": []}
    with pytest.raises(ValueError, match="no JSON"):
        harness.parse_cli_json("Traceback ...")
    calls = []

    def fake_cli(home, model, text):
        calls.append((model, text))
        return {"answer": "Hi!", "thread": "t", "tool_calls": []}, 2.0

    monkeypatch.setattr(harness, "cli_ask", fake_cli)
    results = harness.run_cli_cases(tmp_path / "h", "local:0.5b", TINY_CASES[:2], log=lambda s: None)
    assert [r["ok"] for r in results] == [False, True] and calls[0] == ("local:0.5b", "train a 2-layer GPT")


def test_stratified_limit_and_resume(tmp_path):
    harness = load_harness()
    assert [c["id"] for c in harness.stratified(TINY_CASES, 2)] == ["t-1", "t-2"]
    assert [c["id"] for c in harness.stratified(TINY_CASES * 1, 10)] == ["t-1", "t-2", "t-3", "t-4"]
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in TINY_CASES))
    out = tmp_path / "results"
    out.mkdir()
    # an interrupted run left t-1 scored; --resume must not ask it again
    earlier = ev.score_case(TINY_CASES[0], [{"name": "train_gpt", "args": {"n_layer": 2}}], "", 1.0)
    (out / "agent_eval_fake_all.partial.jsonl").write_text(json.dumps(earlier) + "\n")
    sessions = []

    def factory(home, model):
        sessions.append(FakeSession(home, REPLIES))
        return sessions[-1]

    # a report from the partial results alone loads no session and keeps the partial file
    base = ["--model", "fake", "--split", "all", "--data", str(data), "--out-dir", str(out)]
    payload = harness.main([*base, "--report-partial"], session_factory=factory)
    assert sessions == [] and [r["id"] for r in payload["results"]] == ["t-1"]
    assert "Partial run: 1 of 4" in (out / "agent_eval_fake_all.md").read_text()
    assert (out / "agent_eval_fake_all.partial.jsonl").exists()

    argv = [*base, "--resume"]
    payload = harness.main(argv, session_factory=factory)
    asked = [t for t, _ in sessions[0].asked]
    assert "train a 2-layer GPT" not in asked and "decode them" in asked
    assert payload["results"][0]["ok"] is True  # the reused result, not the fake's wrong reply
    assert not (out / "agent_eval_fake_all.partial.jsonl").exists()
