"""References resolve against the lab's records and the thread, never against prompt text."""

from __future__ import annotations

import dataclasses

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from scratchlab.agent import compare, state
from scratchlab.agent.carry import carry_over
from scratchlab.agent.compare import facts
from scratchlab.agent.state import Record, records_of, resolve, resolve_pronoun

RUNS = [Record(id="run-2", kind="run", name="gpt-2", config={"n_layer": 1, "dataset": "notes.txt"}),
        Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 4, "dataset": "shakespeare"})]  # fmt: skip
TOKS = [Record(id="tokenizer-1", kind="tokenizer", name="bpe400-shakespeare", config={"vocab_size": 400})]


def thread(*turns):
    """System message with the records, then (user, tool name, args, result) turns."""
    msgs = [SystemMessage("sys", additional_kwargs={"lab_records": [*TOKS, *RUNS]})]
    for i, (user, name, args, result) in enumerate(turns):
        msgs.append(HumanMessage(user))
        if name:
            msgs.append(AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"c{i}"}]))
            msgs.append(ToolMessage(result, tool_call_id=f"c{i}", name=name))
    return msgs


def test_records_know_the_turn_that_last_named_them():
    msgs = thread(("train a tokenizer", "train_tokenizer", {}, "Trained bpe400-shakespeare (tokenizer-1)"),
                  ("train a gpt", "train_gpt", {}, "Run gpt-2 (run-2) done"))  # fmt: skip
    recs = {r.id: r.turn for r in records_of(msgs)}
    assert recs == {"tokenizer-1": 0, "run-2": 1, "run-1": None}


def test_names_descriptions_and_kind_nouns_resolve():
    recs = records_of(thread())
    assert resolve("run", "last", "sample from gpt-1", recs, "last") == "gpt-1"
    assert resolve("run", "last", "sample from the 4-layer run", recs, "last") == "gpt-1"
    assert resolve("run", "last", "sample from the run trained on notes.txt", recs, "last") == "gpt-2"
    assert resolve("run", "last", "sample from my run", recs, "last") == "last"  # nothing singles one out
    assert resolve("tokenizer", None, "train a gpt with that tokenizer", recs, "char") == "bpe400-shakespeare"
    assert resolve("n_layer", 3, "3 layers", recs, 4) == 3  # not a reference argument


BASE = "What to adapt: a run name, 'last' (newest run), or a pretrained base 'qwen2.5-coder-0.5b' or 'smollm2-135m'."
TOKENIZER = "Tokenizer id ('tokenizer-3'), name, 'last', or 'cl100k_base'/'o200k_base'."
DATASET = "Named dataset ('shakespeare') or a path to a text file or folder."


def test_a_near_miss_of_a_built_in_the_description_names_becomes_that_built_in():
    assert resolve("base", "qwen-0.5b", "lora-tune qwen 0.5b", [], "last", BASE) == "qwen2.5-coder-0.5b"
    assert resolve("base", "smollm", "adapt smollm 135m", [], "last", BASE) == "smollm2-135m"
    assert resolve("tokenizer", "o200k", "encode hi with o200k", TOKS, "last", TOKENIZER) == "o200k_base"
    # the request writes the built-in out; the model's value is no name and no path
    assert (
        resolve("dataset", "w/", "train a tokenizer on shakespeare w/ 300 vocab", [], None, DATASET)
        == "shakespeare"
    )
    # what stays: a path the request writes, a record, a registry-style example in the description
    assert resolve("dataset", "data/a.txt", "train on data/a.txt", [], "shakespeare", DATASET) == "data/a.txt"
    assert resolve("base", "gpt-1", "adapt gpt-1", RUNS, "last", BASE) == "gpt-1"
    assert resolve("tokenizer", "tok-3", "encode hi with tok-3", [], "last", TOKENIZER) == "tok-3"
    assert resolve("dataset", "data/shakespeare.txt", "train on data/shakespeare.txt", [], "shakespeare",
                   DATASET) == "data/shakespeare.txt"  # fmt: skip
    # a record a repeated call carried gives way to the built-in the request writes out by its gloss
    glossed = "Tokenizer id, name, 'last', or built in: 'cl100k_base' (GPT-4) or 'o200k_base' (GPT-4o)."
    assert resolve("tokenizer", "bpe400-shakespeare", "and with gpt-4's tokenizer?", TOKS, "last",
                   glossed) == "cl100k_base"  # fmt: skip
    assert resolve("tokenizer", "bpe400-shakespeare", "and with that tokenizer?", TOKS, "last",
                   glossed) == "bpe400-shakespeare"  # fmt: skip
    # ... or by a word that begins with its name, before the noun of the argument's kind
    char = "'char' (one token per character) or a trained tokenizer's name, id or path."
    assert resolve("tokenizer", "bpe400-shakespeare", "same again but with the character tokenizer instead",
                   TOKS, "char", char) == "char"  # fmt: skip
    assert (
        resolve("tokenizer", "bpe400-shakespeare", "same again, and chart it", TOKS, "char", char) != "char"
    )


def test_part_of_the_one_name_that_holds_it_is_that_record():
    words = "how many tokens does 'hi' make with my shakespeare tokenizer?"
    assert resolve("tokenizer", "shakespeare", words, TOKS, "last", TOKENIZER) == "bpe400-shakespeare"
    two = [*TOKS, Record(id="tokenizer-2", kind="tokenizer", name="bpe800-shakespeare")]
    assert resolve("tokenizer", "shakespeare", words, two, "last", TOKENIZER) != "bpe400-shakespeare"


def test_a_bare_pronoun_is_the_record_the_conversation_touched_last():
    msgs = thread(("train a tokenizer", "train_tokenizer", {}, "Trained bpe400-shakespeare (tokenizer-1)"))
    recs = records_of(msgs)
    props = {"dataset": {"default": "shakespeare"}, "tokenizer": {"default": "char"}, "n_layer": {}}
    assert resolve_pronoun({"n_layer": 2}, "now a gpt with it", recs, props) == {
        "n_layer": 2, "tokenizer": "bpe400-shakespeare"}  # fmt: skip
    assert resolve_pronoun({}, "now a gpt on shakespeare", recs, props) == {}


def test_a_bare_pronoun_is_the_last_touched_record_of_a_kind_the_tool_takes():
    run = Record(id="run-3", kind="run", name="gpt-3")
    job = Record(id="job-4", kind="job", name="job-4", config={"kind": "train_gpt", "artifact": "run-3"})
    msgs = [SystemMessage("sys", additional_kwargs={"lab_records": [run, *TOKS, job]}),
            HumanMessage("train a gpt in the background"),
            AIMessage("", tool_calls=[{"name": "train_gpt", "args": {"wait": False}, "id": "c0"}]),
            ToolMessage("Started gpt-3 (run-3) as job-4", tool_call_id="c0", name="train_gpt")]  # fmt: skip
    recs = records_of(msgs)
    # the run and its job were named in the same turn: "stop it" means the job, "sample it" the run
    assert resolve_pronoun({}, "actually, stop it", recs, {"job_id": {}}) == {"job_id": "job-4"}
    assert resolve_pronoun({}, "sample from it", recs, {"run": {"default": "last"}}) == {"run": "gpt-3"}
    # a kind the thread never touched stays unresolved
    assert resolve_pronoun({}, "encode it", recs, {"tokenizer": {"default": "last"}}) == {}
    # a list of records takes the one as a list; "its" points as "it" does
    curves = {"runs": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}}
    assert resolve_pronoun({}, "show me its loss curve", recs, curves) == {"runs": ["gpt-3"]}


def test_an_id_the_request_writes_is_kept_though_no_record_has_it():
    job = Record(id="job-1", kind="job", name="job-1", metrics={"status": "running"})
    # "kill job-7" with only job-1 running must not stop job-1: job-7 goes to the tool, which says so
    assert state.resolve("job_id", "job-1", "kill job-7 please, it's slow", [job], None) == "job-7"
    assert state.resolve("job_id", None, "how's job-1 doing?", [job], None) == "job-1"
    assert state.resolve("sweep", None, "ok halt sweep-2, enough", [], "last") == "sweep-2"
    assert state.written_id("compare job-2 and job-3", ("job",)) is None  # two ids: none is the one
    assert state.written_id("train gpt-2 again", ("run",)) is None  # a name, not an id of the kind


def test_a_name_of_the_form_the_lab_gives_is_kept_though_no_record_has_it():
    run = Record(id="run-1", kind="run", name="gpt-1")
    # "resume gpt-9" with only gpt-1 in the lab must not resume gpt-1: gpt-9 goes to the tool, which says so
    assert state.resolve("run", None, "Resume gpt-9 and push it to 5000 steps", [run], "last") == "gpt-9"
    assert state.resolve("run", None, "sample gpt-17 n=120 T=0.6", [], "last") == "gpt-17"
    assert state.resolve("run", None, "sample gpt-1 again", [run], "last") == "gpt-1"
    assert state.written_name("plot gpt-3 and gpt-4", ("run",)) is None  # two names: none is the one
    assert state.written_name("encode it like gpt-4 does", ("tokenizer",)) is None  # not a tokenizer's name


def test_one_stands_for_the_kind_of_the_tools_main_reference():
    recs = [
        Record("run-2", "run", "gpt-2", {"dropout": 0.1}, turn=1),
        Record("run-1", "run", "gpt-1", turn=0),
    ]
    assert resolve("run", None, "sample 60 tokens from the first one", recs, "last") == "gpt-1"
    assert resolve("run", None, "sample from that one", recs, "last") == "gpt-2"
    assert resolve("run", None, "sample 60 tokens", recs, "last") is None  # the tool's default: newest
    # "the second one": in the order the records were made, though the first was touched since
    toks = [
        Record("tokenizer-2", "tokenizer", "mid400", turn=1),
        Record("tokenizer-1", "tokenizer", "tiny260", turn=2),
    ]
    assert resolve("tokenizer", None, "compare the second one with openai's", toks, "last") == "mid400"
    assert resolve("tokenizer", None, "encode hi with the first one", toks, "last") == "tiny260"
    # an ordinal that ends its phrase is "the second one": "and with the second"
    assert resolve("tokenizer", "tiny260", "and with the second", toks, "last") == "mid400"
    assert resolve("tokenizer", "tiny260", "and with the second, please", toks, "last") == "mid400"
    assert resolve("tokenizer", "tiny260", "the second time, use it", toks, "last") == "tiny260"
    # only for the main reference: "train one like that" names no tokenizer
    assert (
        resolve("tokenizer", None, "train one like that", [Record("tokenizer-1", "tokenizer", "bpe")], "char")
        is None
    )


def test_the_same_data_is_what_the_last_touched_record_was_made_from():
    tok = Record("tokenizer-1", "tokenizer", "bpe350-seeds", {"dataset": "../shared/seeds"}, turn=1)
    assert resolve("dataset", None, "a 2-layer gpt on those same docs with that tokenizer", [tok], "x") == (
        "../shared/seeds"
    )
    assert resolve("dataset", None, "a 2-layer gpt with that tokenizer", [tok], "x") is None  # data not named
    run = Record("run-1", "run", "gpt-1", {"dataset": "notes.txt"}, turn=2)  # touched after the tokenizer
    assert (
        resolve("tokenizer", None, "the same docs with that tokenizer", [tok, run], "char") == "bpe350-seeds"
    )
    cats = Record("file-1", "file", "cats.txt", path="/w/cats.txt", turn=2)  # a file touched since
    assert resolve("dataset", None, "train on the same text", [tok, cats], "x") == "/w/cats.txt"


def test_a_question_about_something_running_goes_to_the_tool_that_reads_it_now():
    tools = {"job_status": {"parameters": {"properties": {"job_id": {}}}},
             "cancel_job": {"parameters": {"properties": {"job_id": {}}}},
             "sample_gpt": {"parameters": {"properties": {"run": {"default": "last"}}}}}  # fmt: skip
    prior = {"answer": 0.6, "job_status": 0.2, "cancel_job": 0.01, "sample_gpt": 0.05}
    run = Record("run-1", "run", "gpt-1", turn=0)
    job = Record("job-2", "job", "job-2", {"artifact": "run-1"}, {"status": "running"})
    assert state.live_tool(prior, tools, [run, job], "how's it going?", 0.1) == "job_status"
    assert state.live_tool(prior, tools, [run, job], "what is attention?", 0.1) is None  # about nothing here
    done = Record("job-2", "job", "job-2", {"artifact": "run-1"}, {"status": "done"})
    assert (
        state.live_tool(prior, tools, [run, done], "how's it going?", 0.1) == "job_status"
    )  # it ended since
    assert state.live_tool(prior, tools, [run], "how's it going?", 0.1) is None  # no job: its record is all
    assert state.live_tool({**prior, "job_status": 0.02}, tools, [run, job], "did it use bpe?", 0.1) is None
    # once its job has ended: no tool for a question about its settings
    adapter = Record("adapter-1", "adapter", "qa-r4", {"r": 4}, turn=1)
    lora_job = Record("job-3", "job", "job-3", {"artifact": "adapter-1"}, {"status": "done"})
    acting = {**tools, "merge_lora": {"parameters": {"properties": {"adapter": {}}}},
              "generate_with_adapter": {"parameters": {"properties": {"adapter": {}}}}}  # fmt: skip
    asked = {"answer": 0.46, "merge_lora": 0.13, "generate_with_adapter": 0.1, "job_status": 0.01}
    assert state.live_tool(asked, acting, [adapter, lora_job], "what rank did the adapter use?", 0.1) is None
    assert state.live_tool({**asked, "generate_with_adapter": 0.3}, acting, [adapter, lora_job],
                           "ask that one: hi?", 0.1) == "generate_with_adapter"  # fmt: skip
    # while it runs, any tool that takes it: "actually, kill it"
    kill = {"answer": 0.5, "cancel_job": 0.4, "job_status": 0.1}
    assert state.live_tool(kill, tools, [run, job], "actually, kill it", 0.1) == "cancel_job"
    # a setting a running search varies: its best value so far is read now, not from the record
    sweeps = {"sweep_status": {"parameters": {"properties": {"sweep": {}}}}}
    space = {"space": {"n_head": {"choices": [2, 4]}}, "base": {"n_head": 2}}  # a sweep's artifact config
    search = Record("sweep-3", "sweep", "grid-a", state.flat_config(space), {"status": "running"}, turn=0)
    ahead = {"answer": 0.6, "sweep_status": 0.25}
    assert (
        state.live_tool(ahead, sweeps, [search], "so which head count leads right now?", 0.1)
        == "sweep_status"
    )
    assert state.live_tool(ahead, sweeps, [run, job], "so which head count leads right now?", 0.1) is None
    ended = dataclasses.replace(search, metrics={"status": "done"})
    assert state.live_tool(ahead, sweeps, [ended], "so which head count leads right now?", 0.1) is None


def test_a_pronoun_for_a_record_the_chosen_tool_cannot_take_goes_to_a_tool_that_can():
    # "ok, stop it for now" after a background run chose stop_sweep, with no sweep in the lab
    tools = {"stop_sweep": {"parameters": {"properties": {"sweep": {"default": "last"}}}},
             "cancel_job": {"parameters": {"properties": {"job_id": {}}, "required": ["job_id"]}},
             "sample_gpt": {"parameters": {"properties": {"run": {"default": "last"}}}},
             "train_gpt": {"parameters": {"properties": {"dataset": {}, "tokenizer": {"default": "char"}}}}}  # fmt: skip
    prior = {"stop_sweep": 0.91, "cancel_job": 0.03, "sample_gpt": 0.004, "train_gpt": 0.001}
    run = Record("run-1", "run", "lute", turn=1)
    job = Record("job-1", "job", "job-1", {"artifact": "run-1"}, {"status": "done"}, turn=2)
    verbs = {"stop", "halt"}
    assert (
        state.referent_tool("stop_sweep", prior, tools, [run, job], "ok, stop it for now", verbs)
        == "cancel_job"
    )
    sweep = Record("sweep-1", "sweep", "sweep-1", turn=0)
    assert (
        state.referent_tool("stop_sweep", prior, tools, [run, job, sweep], "stop it", verbs) is None
    )  # one to stop
    assert (
        state.referent_tool("stop_sweep", prior, tools, [run, job], "stop the sweep", verbs) is None
    )  # no pronoun
    assert (
        state.referent_tool("stop_sweep", prior, tools, [run, job], "stop sweep-2, it's slow", verbs) is None
    )
    assert state.referent_tool("stop_sweep", prior, tools, [], "stop it", verbs) is None  # "it" is nothing
    # the noun of a kind the lab holds is an object too: "halt the run that's learning from ..."
    assert state.referent_tool("stop_sweep", prior, tools, [run, job], "halt the run on the bazaar prices",
                               verbs) == "cancel_job"  # fmt: skip
    assert state.referent_tool("stop_sweep", prior, tools, [job], "halt the run", verbs) is None  # no run
    assert (
        state.referent_tool("stop_sweep", prior, tools, [run, job], "stop that for now", verbs)
        == "cancel_job"
    )
    # the prior of the verb and its object, not of the whole clause's description, picks the tool
    described = {"stop_sweep": 0.26, "sample_gpt": 0.15, "cancel_job": 0.04}
    asked = []
    rank = lambda text: asked.append(text) or {"stop_sweep": 0.58, "cancel_job": 0.22}  # noqa: E731
    said = "halt the run that's learning from the bazaar price list"
    assert state.referent_tool("stop_sweep", described, tools, [run, job], said, verbs) == "sample_gpt"
    assert state.referent_tool("stop_sweep", described, tools, [run, job], said, verbs, rank) == "cancel_job"
    assert asked == ["halt the run"]
    assert (
        state.referent_tool("train_gpt", prior, tools, [run], "train it again", {"train"}) is None
    )  # no record


def test_ended_jobs_are_records_after_the_running_ones():
    from types import SimpleNamespace as Job

    jobs = [Job(id=f"job-{i}", kind="train_gpt", artifact_id=None, status=st, step=1, total=2)
            for i, st in ((3, "done"), (2, "running"), (1, "cancelled"))]  # fmt: skip
    recs = state.from_registry([], jobs)
    assert [r.id for r in recs] == ["job-2", "job-3", "job-1"]
    assert state.recent(recs, ("job",))[0].id == "job-2" and recs[1].metrics["status"] == "done"


def test_a_job_is_named_by_the_name_of_the_artifact_it_makes():
    from types import SimpleNamespace as Obj

    arts = [
        Obj(id=f"run-{i}", kind="run", name=n, config={}, metrics={}, path="")
        for i, n in ((6, "big-run"), (2, "gpt-2"))
    ]
    jobs = [Obj(id="job-6", kind="train_gpt", artifact_id="run-6", status="running", step=1, total=9),
            Obj(id="job-2", kind="train_gpt", artifact_id="run-2", status="done", step=9, total=9)]  # fmt: skip
    recs = state.from_registry(arts, jobs)
    assert state.resolve("job_id", None, "kill the big-run training", recs, None) == "job-6"
    assert state.resolve("job_id", None, "how is the gpt-2 job doing", recs, None) == "job-2"
    assert state.resolve("run", None, "sample from big-run", recs, "last") == "big-run"  # the run itself
    # a sweep of many short trials: the newest trials stay, the sweep itself is not pushed out
    trials = [Obj(id=f"run-{i}", kind="run", name=f"lr-t{i}", config={}, metrics={"sweep": "sweep-1"}, path="")
              for i in range(60, 1, -1)]  # fmt: skip
    sweep = Obj(id="sweep-1", kind="sweep", name="lr", config={}, metrics={}, path="")
    recs = state.from_registry([*trials, sweep], jobs)
    assert [r.id for r in recs if r.kind == "run"] == [
        f"run-{i}" for i in range(60, 60 - state.MAX_TRIALS, -1)
    ]
    assert any(r.id == "sweep-1" for r in recs) and {r.id for r in recs if r.kind == "job"} == {
        "job-6",
        "job-2",
    }


def test_the_same_but_x_copies_the_last_call_of_that_tool():
    params = {"properties": {"n_layer": {"default": 4}, "n_head": {"default": 4}, "name": {}}}
    msgs = thread(
        ("train a 2-layer gpt called a", "train_gpt", {"n_layer": 2, "max_iters": 150, "name": "a"}, "ok")
    )
    msgs.append(HumanMessage("the same but 8 heads"))
    assert carry_over("train_gpt", {"n_head": 8}, msgs, [], params) == {
        "n_layer": 2,
        "max_iters": 150,
        "n_head": 8,
    }
    # without a call in this thread: the referenced run's settings that differ from the defaults
    assert carry_over("train_gpt", {"n_head": 8}, [HumanMessage("again with 8 heads")], RUNS, params) == {
        "n_layer": 1, "n_head": 8}  # fmt: skip
    # without a call of that tool: what the last call of another tool shares with it, not its label or wait
    ablation = {"switches": ["rope"], "n_layer": 1, "n_head": 2, "wait": False, "name": "abl"}
    msgs = thread(("quick ablation: baseline vs rope, 1 layer, 2 heads", "ablate_gpt", ablation, "table"))
    msgs.append(HumanMessage("then train a normal gpt of the same size, also 100 steps"))
    gpt = {"properties": {**params["properties"], "max_iters": {"default": 2000}, "wait": {"default": True}}}
    assert carry_over("train_gpt", {"max_iters": 100}, msgs, [], gpt) == {
        "n_layer": 1,
        "n_head": 2,
        "max_iters": 100,
    }


def test_a_repeat_that_adds_to_a_list_extends_the_repeated_calls_list():
    ablate = {"properties": {"switches": {}, "n_layer": {"default": 4}, "max_iters": {"default": 300}}}
    first = {"switches": ["no_pos_emb"], "n_layer": 1, "max_iters": 60}
    msgs = thread(
        ("does dropping positional embeddings hurt? 1 layer, 60 steps", "ablate_gpt", first, "table")
    )
    msgs.append(HumanMessage("add rope as a second variant and rerun it"))
    got = carry_over("ablate_gpt", {"switches": ["rope"]}, msgs, [], ablate, extend=True)
    assert got == {"switches": ["no_pos_emb", "rope"], "n_layer": 1, "max_iters": 60}
    got = carry_over("ablate_gpt", {"switches": ["rope"]}, msgs, [], ablate)  # "with rope instead"
    assert got["switches"] == ["rope"]


def test_facts_name_the_tokenizer_a_run_used():
    tok = Record(id="tokenizer-1", kind="tokenizer", name="bpe400", path="/lab/tokenizers/tokenizer-1")
    run = Record(id="run-3", kind="run", name="gpt-3", config={"tokenizer": "/lab/tokenizers/tokenizer-1", "n_layer": 2},
                 metrics={"val_loss": 1.86941, "status": "done"})  # fmt: skip
    text = facts([run, tok])
    assert "tokenizer=bpe400" in text and "val_loss=1.8694" in text and "n_layer=2" in text


def test_facts_give_each_heads_width():
    # "how wide is each attention head in oboe4?" was answered 64, its n_embd
    run = Record(id="run-2", kind="run", name="oboe4", config={"n_layer": 2, "n_head": 4, "n_embd": 64})
    assert "head_size=16" in facts([run])
    assert "head_size" not in facts([Record(id="run-1", kind="run", name="x", config={"n_embd": 64})])


def test_facts_keep_the_results_a_question_asks_about_and_no_paths():
    # a trainer's result: paths and many scalars before the parameter count
    result = {"run_dir": "/lab/runs/run-3", "status": "done", "step": 150, "max_iters": 150, "val_loss": 1.9,
              "best_val_loss": 1.88, "best_step": 140, "train_loss": 1.7, "last_batch_loss": 1.71,
              "perplexity": 6.7, "bits_per_char": 2.7, "params": 410624, "checkpoint": "/lab/runs/run-3/best.pt"}  # fmt: skip
    text = facts([Record(id="run-3", kind="run", name="gpt-3", metrics=result)])
    assert "params=410624" in text and "val_loss=1.9" in text and "status=done" in text
    assert "/lab/runs" not in text and "checkpoint" not in text


def test_a_question_that_counts_or_names_a_kind_is_about_those_records_alone():
    recs = [*RUNS, *TOKS, Record(id="run-0", kind="run", name="gpt-0")]
    assert [r.id for r in state.about("which of the two runs had the lower val loss?", recs)] == [
        "run-1",
        "run-2",
    ]
    assert [r.id for r in state.about("which run was better?", recs)] == ["run-2", "run-1", "run-0"]
    assert [r.id for r in state.about("how big is the tokenizer?", recs)] == ["tokenizer-1"]
    assert [r.id for r in state.about("how did it go?", recs)] == ["run-2", "run-1", "tokenizer-1", "run-0"]


def test_facts_order_the_records_by_what_differs_computed_not_left_to_the_model():
    a = Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 4, "n_head": 4},
               metrics={"status": "done", "val_loss": 1.97123, "params": 1234567, "step": 150})  # fmt: skip
    b = Record(id="run-2", kind="run", name="gpt-2", config={"n_layer": 2, "n_head": 4},
               metrics={"status": "done", "val_loss": 2.0811, "params": 110000, "step": 150})  # fmt: skip
    lines = compare.compared([b, a])
    assert (
        "- val_loss: lower, better gpt-1 (1.9712); higher, worse gpt-2 (2.0811); difference 0.1099" in lines
    )
    assert (
        "- params: lower gpt-2 (110000); higher gpt-1 (1234567); difference 1124567" in lines
    )  # never rounded
    assert "- n_layer: lower gpt-2 (2); higher gpt-1 (4); difference 2" in lines
    assert not any(
        line.startswith(("- step", "- n_head", "- status")) for line in lines
    )  # equal or not a number
    c = Record(id="run-3", kind="run", name="gpt-3", metrics={"val_loss": 1.5})
    assert (
        "- val_loss: lowest, best gpt-3 (1.5); highest, worst gpt-2 (2.0811); spread 0.5811"
        in compare.compared([a, b, c])
    )
    tok = Record(id="tokenizer-1", kind="tokenizer", name="bpe", metrics={"val_loss": 9.0})
    assert not any(
        "bpe" in line for line in compare.compared([a, tok])
    )  # kinds are never compared with each other
    assert compare.compared([a]) == [] and facts([b, a]).startswith(lines[0])  # first, before the records
    # a question that speaks of some of them gets those alone, whatever their place in the order
    assert compare.compared([a, b], "which is the biggest?") == [
        "- params: lower gpt-2 (110000); higher gpt-1 (1234567); difference 1124567"
    ]
    assert compare.compared([a, b], "which one has more layers?") == [
        "- n_layer: lower gpt-2 (2); higher gpt-1 (4); difference 2"
    ]
    assert compare.compared([a, b], "which has the most heads?") == lines  # they do not differ: all


def test_a_sentence_that_puts_a_record_at_the_wrong_end_of_an_order_is_caught():
    runs = [Record(id=f"run-{i}", kind="run", name=f"gpt-{i}", config={"n_layer": layers},
                   metrics={"val_loss": loss, "params": params})
            for i, layers, loss, params in ((3, 1, 2.25, 60000), (2, 2, 2.08, 110000), (1, 4, 1.97, 210000))]  # fmt: skip
    wrong = ["Yes, GPT-3 beat GPT-2 on the validation loss.", "The biggest model is gpt-3.",
             "The run with the most layers is run-3.", "gpt-1 has the worst val loss."]  # fmt: skip
    right = ["gpt-1 has the lowest val loss (1.97).", "The biggest model is gpt-1.", "gpt-3 is the smallest.",
             "gpt-2 has a lower val loss than gpt-3.", "gpt-3 was trained on shakespeare."]  # fmt: skip
    assert [compare.contradicts_order(x, runs) for x in wrong] == [True] * 4
    assert [compare.contradicts_order(x, runs) for x in right] == [False] * 5
    # the question names the number when the sentence does not; the middle record is at no end
    assert compare.contradicts_order("gpt-3 did.", runs, "which run has the lower val loss?")
    assert not compare.contradicts_order("gpt-2 is lower than gpt-1.", runs, "which val loss is lower?")
    assert compare.contradicts_order("gpt-2 is lower than gpt-1.", runs[1:], "which val loss is lower?")
    # a record the sentence describes and does not name: its description picks it, or picks none
    assert compare.contradicts_order("The one-layer model has the lowest val loss.", runs)
    assert not compare.contradicts_order("The 4-layer model has the lowest val loss.", runs)
    same = [dataclasses.replace(r, config={"n_layer": 2, "n_head": 4}) for r in runs[1:]]
    assert compare.contradicts_order("The GPT with 4 heads had the lower val loss.", same)  # fits both
    assert not compare.contradicts_order("Both runs used 4 heads.", same)  # no end claimed


def test_a_job_tool_on_a_record_with_tools_of_its_own_becomes_its_own():
    sweep = Record(id="sweep-1", kind="sweep", name="lr-sweep", turn=0)
    job = Record(
        id="job-1", kind="job", name="job-1", config={"artifact": "sweep-1"}, metrics={"status": "running"}
    )
    tools = dict.fromkeys(["job_status", "cancel_job", "sweep_status", "stop_sweep"], {})
    recs = [sweep, job, *RUNS]
    assert state.own_tool("job_status", tools, recs, "how is it doing?") == "sweep_status"
    assert state.own_tool("cancel_job", tools, recs, "ok stop it") == "stop_sweep"
    assert state.own_tool("cancel_job", tools, recs, "stop job-1") == "cancel_job"  # the job, named
    assert (
        state.own_tool("job_status", tools, [*RUNS, job], "how is it doing?") == "job_status"
    )  # a run's job
    assert (
        state.own_tool("job_status", {"job_status": {}}, recs, "how is it doing?") == "job_status"
    )  # no tool
    # the sweep's status named its trial runs in the same turn: "it" is still the sweep, not a trial
    trials = [Record(id=f"run-{i}", kind="run", name=f"lr-sweep-t{i}", metrics={"sweep": "sweep-1"}, turn=0)
              for i in (3, 2, 1)]  # fmt: skip
    assert state.own_tool("cancel_job", tools, [*trials, sweep, job], "fine, stop it there") == "stop_sweep"
    assert state.about("what was its val loss?", trials) == trials[:1]  # no sweep touched: the newest trial


def test_two_settings_glued_to_their_numbers_pick_out_two_records():
    runs = [Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 1, "n_embd": 32}),
            Record(id="run-2", kind="run", name="gpt-2", config={"n_layer": 3, "n_embd": 64}),
            Record(id="run-3", kind="run", name="gpt-3", config={"n_layer": 2, "n_embd": 64})]  # fmt: skip
    names = lambda clause: [r.name for r in state.plural(clause, "runs", runs)]  # noqa: E731
    assert names("show me the loss curves for the 3-layer and the 1-layer runs") == ["gpt-2", "gpt-1"]
    assert names("compare the one-layer and two-layer models") == ["gpt-1", "gpt-3"]
    assert names("sample from the 2-layer run") == []  # one record
    assert names("the 64-wide and the 32-wide models") == []  # 64 fits two: picks out none
    assert names("the 1-layer and the 32-wide runs") == []  # the same record twice


def test_the_same_text_is_the_data_of_the_record_the_clause_names_or_describes():
    recs = [Record(id="tokenizer-1", kind="tokenizer", name="kitchen-tok", config={"dataset": "data/recipes.txt"}),
            Record(id="tokenizer-2", kind="tokenizer", name="bpe512", config={"dataset": "shakespeare"}),
            Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 2, "dataset": "data/poems.txt"})]  # fmt: skip
    same = "train a 2-layer gpt for 500 steps with my recipe tokeniser, on the same text it was trained on"
    assert resolve("dataset", None, same, recs, None) == "data/recipes.txt"  # its data words, not "2-layer"
    assert (
        resolve("dataset", None, "a gpt on the same data as the 2-layer run", recs, None) == "data/poems.txt"
    )
    assert resolve("dataset", None, "a gpt on the same data as kitchen-tok", recs, None) == "data/recipes.txt"
    assert resolve("dataset", None, "a gpt on the same data", recs, None) is None  # nothing touched or picked
    stated = "how does my recipe tokenizer stack up against GPT-4's? measure it on data/reviews.txt"
    assert resolve("dataset", "data/reviews.txt", stated, recs, None) == "data/reviews.txt"  # stated wins


def test_a_request_that_describes_a_record_a_tool_reads_goes_to_the_tool_over_an_answer():
    adapters = [Record(id="adapter-1", kind="adapter", name="helper-v1", config={"data": "data/sql_pairs.jsonl"}),
                Record(id="adapter-2", kind="adapter", name="helper-v2", config={"data": "demo"})]  # fmt: skip
    tools = {"generate_with_adapter": {"parameters": {"properties": {"adapter": {"default": "last"}}}}}
    prior = {"answer": 0.7, "generate_with_adapter": 0.3}
    ask = "using the adapter tuned on the sql pairs, answer: 'list all customers from Leeds'"
    assert state.tool_over_answer(prior, [*prior], tools, adapters, 0.8, ask) == "generate_with_adapter"
    # its kind's noun is needed: words of its data alone are a topic ("what are sql pairs?")
    assert state.tool_over_answer(prior, [*prior], tools, adapters, 0.8, "what are sql pairs?") is None


def test_it_or_that_in_a_question_is_the_record_touched_last_alone():
    toks = [Record(id="tokenizer-2", kind="tokenizer", name="bpe356", config={"vocab_size": 356}, turn=1),
            Record(id="tokenizer-1", kind="tokenizer", name="bpe406", config={"vocab_size": 406}, turn=0),
            Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 2})]  # fmt: skip
    assert [r.name for r in state.about("what vocab size did that end up with?", toks)] == ["bpe356"]
    assert [r.name for r in state.about("what was its vocab size?", toks)] == ["bpe356"]
    assert len(state.about("which tokenizer has the bigger vocab?", toks)) == 2  # no pronoun: both
    untouched = [dataclasses.replace(r, turn=None) for r in toks]
    assert len(state.about("what was its vocab size?", untouched)) == 2  # nothing touched: no guess


def test_a_pointer_at_settings_repeats_a_call():
    assert state.points_at_settings("ok, now train a regular one with those dimensions, 200 steps")
    assert state.points_at_settings("a gpt of the same size on my notes")
    assert not state.points_at_settings("train a gpt with embedding size 64")
    assert state.points_at_settings("same setup, but also try it without residual connections")
    assert not state.points_at_settings("what settings should I use?")


def test_both_and_the_last_two_mean_several_records_and_first_the_oldest_touched():
    from scratchlab.agent.state import plural

    recs = records_of(thread())
    assert [r.name for r in plural("sample 50 tokens from both runs", "run", recs)] == ["gpt-1", "gpt-2"]
    assert [r.name for r in plural("plot my last two runs", "run", recs)] == ["gpt-1", "gpt-2"]  # as made
    assert plural("sample from the run", "run", recs) == [] and plural("both", "tokenizer", recs) == []
    # a number glued to a word by a hyphen describes one record, counts none
    assert plural("generate some text from the two-layer model", "run", recs) == []
    assert plural("sample from the 2-layer model", "run", recs) == []
    msgs = thread(
        ("train a gpt", "train_gpt", {}, "Run gpt-1 (run-1) done"),
        ("again", "train_gpt", {}, "Run gpt-2 (run-2)"),
    )
    assert resolve("run", "last", "sample from the first run", records_of(msgs), "last") == "gpt-1"
    assert resolve("run", "last", "sample from that run", records_of(msgs), "last") == "gpt-2"


def test_the_bank_beats_an_answer_when_what_its_tool_reads_exists():
    from scratchlab.tools.rag import SearchDocumentsArgs

    tools = {"search_documents": {"parameters": SearchDocumentsArgs.model_json_schema()}}
    prior = {"search_documents": 0.6, "answer": 0.38, "recall": 0.02}
    choices = ["search_documents", "recall", "answer"]
    index = [Record(id="index-1", kind="index", name="books")]
    assert state.tool_over_answer(prior, choices, tools, index, sure=0.8) == "search_documents"
    assert (
        state.tool_over_answer(prior, choices, tools, RUNS, sure=0.8) is None
    )  # no index: the model answers
    assert (
        state.tool_over_answer({**prior, "search_documents": 0.85}, choices, tools, [], 0.8)
        == "search_documents"
    )
    assert (
        state.tool_over_answer({"search_documents": 0.3, "answer": 0.7}, choices, tools, index, 0.8) is None
    )
    # the request names the index: its favourite tool reads it, whatever the margin
    weak = {"search_documents": 0.46, "answer": 0.26, "recall": 0.05}
    assert state.tool_over_answer(weak, choices, tools, index, 0.8, "what does the KV cache store?") is None
    assert (
        state.tool_over_answer(
            weak, choices, tools, index, 0.8, "according to the books, what does the KV cache store?"
        )
        == "search_documents"
    )
    # the request names the index, answer is the favourite: the favourite tool reads it, so it searches
    topical = {"search_documents": 0.29, "answer": 0.37, "recall": 0.05}
    assert state.tool_over_answer(topical, choices, tools, index, 0.8, "according to the books, how do I "
                                  "limit BLAS threads?") == "search_documents"  # fmt: skip
    assert state.tool_over_answer(topical, choices, tools, index, 0.8, "how do I limit BLAS threads?") is None
    # pointing at documents the lab indexes is asking the index, named or not
    said = "according to my notes, how do I limit BLAS threads?"
    assert state.tool_over_answer(topical, choices, tools, index, 0.8, said) == "search_documents"
    assert state.tool_over_answer(weak, choices, tools, index, 0.8, "what does the guide say about KV caches?") == (
        "search_documents")  # fmt: skip
    assert (
        state.tool_over_answer(topical, choices, tools, RUNS, 0.8, said) is None
    )  # no index: the model answers
    # "they" after indexing: the record the conversation touched last is the index
    touched = [
        Record(id="index-1", kind="index", name="seeds", turn=0),
        Record(id="run-1", kind="run", name="g"),
    ]
    asked = "what do they say about the KV cache?"
    assert state.tool_over_answer(topical, choices, tools, touched, 0.8, asked) == "search_documents"
    assert state.tool_over_answer(
        topical, choices, tools, touched, 0.8, "what's their take on perplexity?"
    ) == ("search_documents")
    # "its" right after indexing, before anything was looked up in it: the documents' own thing
    possessive = "how many layers does its example model stack?"
    assert state.tool_over_answer(lower_prior := {"answer": 0.9, "search_documents": 0.04}, choices, tools, touched,
                                  0.8, possessive, fresh=True) == "search_documents"  # fmt: skip
    # after a search, its passages are in the thread: the follow-up is answered from them
    assert state.tool_over_answer(lower_prior, choices, tools, touched, 0.8, possessive) is None
    # "in there" is the index too, even with another tool before search_documents in the prior
    tools_ab = {**tools, "ablate_gpt": {"parameters": {"properties": {"n_layer": {}}}}}
    lower = {"answer": 0.57, "ablate_gpt": 0.12, "search_documents": 0.09, "recall": 0.03}
    there = "anything in there on weight tying?"
    assert state.tool_over_answer(lower, [*lower], tools_ab, touched, 0.8, there) == "search_documents"
    assert (
        state.tool_over_answer(lower, [*lower], tools_ab, touched, 0.8, "is there a way to tie weights?")
        is None
    )
    touched[1].turn = 1  # a run touched since: "they" is not the documents
    assert state.tool_over_answer(topical, choices, tools, touched, 0.8, asked) is None
    # a named record the favourite tool does not read changes nothing ("gpt-1" is a run)
    assert state.tool_over_answer(topical, choices, tools, RUNS, 0.8, "what was gpt-1's val loss?") is None
    # an index described by its noun and the folder it reads, with recall before search in the prior
    spice = [Record(id="index-2", kind="index", name="carme", config={"path": "~/docs/spice_trade_history"}),
             Record(id="index-3", kind="index", name="leda", config={"path": "~/docs/astronomy_club"})]  # fmt: skip
    recall_first = {"answer": 0.39, "recall": 0.14, "search_documents": 0.11}
    tools_r = {**tools, "recall": {"parameters": {"properties": {"query": {}}}}}
    pepper = "in my spice trade history index, what were pepper prices like around 1600?"
    assert (
        state.tool_over_answer(recall_first, [*recall_first], tools_r, spice, 0.8, pepper)
        == "search_documents"
    )
    assert state.tool_over_answer(recall_first, [*recall_first], tools_r, spice, 0.8, "what were pepper prices "
                                  "like around 1600?") is None  # fmt: skip


def test_a_question_whose_topic_a_kept_memory_holds_is_a_recall():
    tools = {"recall": {}, "remember": {}}
    kept = ["The user's supervisor is Dr. Okafor.", "Prefers runs named after birds."]
    common = {"what", "my", "is", "the", "do", "you"}
    prior = {"answer": 0.71, "recall": 0.18}
    assert (
        state.remembered(prior, tools, kept, "do you still remember my supervisor's name?", 0.1, common)
        == "recall"
    )
    assert state.remembered(prior, tools, kept, "what is a learning rate?", 0.1, common) is None  # not kept
    assert (
        state.remembered({"recall": 0.02}, tools, kept, "who is a supervisor?", 0.1, common) is None
    )  # prior
    assert (
        state.remembered(prior, tools, [], "my supervisor's name?", 0.1, common) is None
    )  # the answer leads
    # a setting of the call just made is that call's, which the thread holds
    seed = ["please remember my preferred seed for samples is 1234"]
    asked = "which seed did you just use?"
    assert state.remembered(prior, tools, seed, asked, 0.1, common) == "recall"
    assert (
        state.remembered(prior, tools, seed, asked, 0.1, common, used={"run": "last", "seed": 1234}) is None
    )
    # a majority for recall needs no shared word, only something kept ("heads" is an everyday word)
    heads = {"answer": 0.1, "recall": 0.56}
    assert state.remembered(heads, tools, ["I prefer 8 attention heads"], "how many heads do I usually want?", 0.1,
                            common | {"heads", "many"}) == "recall"  # fmt: skip
    # with nothing kept, a recall that leads the prior still runs: the tool says nothing is kept, where
    # the model invented a name ("do u remember what i named the tarot tokenizer?"); not for a record
    asked = "do u remember what i named the tarot tokenizer?"
    assert state.remembered({"answer": 0.28, "recall": 0.39}, tools, [], asked, 0.1, common) == "recall"
    assert state.remembered({"answer": 0.4, "recall": 0.39}, tools, [], asked, 0.1, common) is None
    tarot = Record(
        id="tokenizer-1", kind="tokenizer", name="tk-7", config={"dataset": "data/tarot_cards.txt"}
    )
    assert (
        state.remembered({"answer": 0.28, "recall": 0.39}, tools, [], asked, 0.1, common, recs=[tarot])
        is None
    )
    msgs = [SystemMessage("sys", additional_kwargs={"memories": kept})]
    assert state.memories_of(msgs) == kept and state.memories_of([]) == []


def test_a_builtin_is_resolved_by_its_gloss_even_when_the_model_left_it_out():
    desc = "Tokenizer id, name, 'last', or built in: 'cl100k_base' (GPT-4) or 'o200k_base' (GPT-4o)."
    assert (
        resolve("tokenizer", None, "how would GPT-4o's tokenizer split 'hello'?", [], "last", desc)
        == "o200k_base"
    )
    assert resolve("tokenizer", None, "encode 'hi' with gpt-4's tokenizer", [], "last", desc) == "cl100k_base"
    assert resolve("tokenizer", "last", "encode 'hi' with gpt-4o", [], "last", desc) == "o200k_base"
    # a built-in carried over from the call before gives way to the one this request glosses
    assert resolve("tokenizer", "o200k_base", "and GPT-4's?", [], "last", desc) == "cl100k_base"
    assert resolve("tokenizer", "o200k_base", "and with 50 tokens?", [], "last", desc) == "o200k_base"
    assert (
        resolve("tokenizer", None, "encode 'hi' with my tokenizer", [], "last", desc) is None
    )  # default applies


def test_a_run_is_described_by_its_tokenizer():
    recs = [Record(id="run-1", kind="run", name="gpt-1", config={"tokenizer": "char", "dataset": "shakespeare"}),
            Record(id="run-2", kind="run", name="gpt-2", config={"tokenizer": "bpe512-shakespeare",
                                                                 "dataset": "shakespeare"})]  # fmt: skip
    assert (
        resolve("run", "last", "get me 100 tokens out of the character-level model", recs, "last") == "gpt-1"
    )
    assert resolve("run", "last", "sample from the bpe512 model", recs, "last") == "gpt-2"
    assert resolve("run", "last", "sample from the shakespeare model", recs, "last") == "last"  # both fit


def test_a_question_is_about_the_record_it_names_or_describes_first():
    job = Record(id="job-2", kind="job", name="job-2")
    recs = [*RUNS, *TOKS, job]
    assert [r.id for r in state.about("how did the 4-layer run do?", recs)] == ["run-1"]
    assert [r.id for r in state.about("how did the four-layer run do?", recs)] == ["run-1"]  # in words
    assert (
        len(state.about("which of the four runs had the lower val loss?", recs)) > 1
    )  # a count describes none
    older_first = RUNS[::-1]  # gpt-1 (4 layers) newest
    assert resolve("run", "last", "sample from the one-layer model", older_first, "last") == "gpt-2"
    assert resolve("run", "last", "sample from that one", older_first, "last") == "gpt-1"  # "one": no number
    assert [r.id for r in state.about("and gpt-2's val loss?", recs)] == ["run-2"]
    assert [r.id for r in state.about("what did the run on notes.txt reach?", recs)] == ["run-2"]
    assert [r.id for r in state.about("gpt-1 or gpt-2: which was better?", recs)] == ["run-2", "run-1"]
    plain = state.about("how did it go?", recs)
    assert [r.id for r in plain] == ["run-2", "run-1", "tokenizer-1"]  # newest first, no job
    assert state.about("anything?", [job]) == [job] and state.about("anything?", []) == []


def test_a_job_and_the_artifact_it_makes_describe_each_other():
    from types import SimpleNamespace as NS

    arts = [NS(id="run-3", kind="run", name="tiny", config={"n_embd": 32, "n_layer": 1}, metrics={}, path=""),
            NS(id="run-2", kind="run", name="mk2", config={"n_embd": 256, "n_layer": 4}, metrics={}, path=""),
            NS(id="run-1", kind="run", name="slim", config={"n_embd": 48, "n_layer": 2}, metrics={}, path="")]  # fmt: skip
    jobs = [NS(id="job-5", kind="gpt", artifact_id="run-3", status="running", step=10, total=100),
            NS(id="job-4", kind="gpt", artifact_id="run-2", status="running", step=10, total=100),
            NS(id="job-3", kind="gpt", artifact_id="run-1", status="failed", step=5, total=100)]  # fmt: skip
    recs = state.from_registry(arts, jobs)
    # the job for a described model
    assert resolve("job_id", None, "stop the training job for the 256-wide model", recs, None) == "job-4"
    # the run whose job crashed (the run itself records no status)
    assert resolve("run", None, "the run that crashed: carry on where it died", recs, "last") == "slim"
    assert {r.name: r.metrics.get("status") for r in recs if r.kind == "run"} == {
        "tiny": "running", "mk2": "running", "slim": "failed"}  # fmt: skip
    # a job's settings are its model's: never compared as the job's own
    assert not any("n_embd" in line for line in compare.compared([r for r in recs if r.kind == "job"]))


def test_an_index_is_described_by_the_folder_it_reads():
    recs = [Record(id="index-1", kind="index", name="idx-a", config={"path": "~/notes/physics"}),
            Record(id="index-2", kind="index", name="idx-b", config={"path": "~/notes/cooking"})]  # fmt: skip
    assert (
        state.resolve("index", "last", "in my cooking notes, anything on braising?", recs, "last") == "idx-b"
    )
    assert state.resolve("index", "last", "anything on braising?", recs, "last") == "last"


def test_counted_records_are_the_newest_of_those_the_clause_describes():
    recs = [Record(id=f"run-{i}", kind="run", name=f"gpt-{i}", config={"dataset": data})
            for i, data in ((4, "shakespeare"), (3, "data/recipes.txt"), (2, "shakespeare"), (1, "shakespeare"))]  # fmt: skip
    # fewer fit than the count: the newest of all (the one described is among them here)
    assert [r.name for r in state.plural("both runs on the recipes", "runs", recs)] == ["gpt-3", "gpt-4"]
    assert [r.name for r in state.plural("compare both runs on shakespeare", "runs", recs)] == [
        "gpt-2",
        "gpt-4",
    ]
    assert [r.name for r in state.plural("compare both runs", "runs", recs)] == ["gpt-3", "gpt-4"]


def test_last_in_a_request_is_no_built_in_name():
    runs = [Record(id="run-2", kind="run", name="gpt-7", metrics={"status": "done"}),
            Record(id="run-1", kind="run", name="gpt-6", metrics={"status": "failed"})]  # fmt: skip
    desc = "Run id, name or 'last' to continue from its last checkpoint."
    assert (
        resolve("run", "last", "restart my crashed run from its last checkpoint", runs, "last", desc)
        == "gpt-6"
    )
    assert resolve("run", "last", "resume the last run", runs, "last", desc) == "gpt-7"


def test_two_records_at_the_same_number_have_no_lower_one():
    runs = [Record(id=f"run-{i}", kind="run", name=f"gpt-{i}", metrics={"val_loss": 4.0334}) for i in (2, 1)]
    asked = "which of my runs had the lower val loss, gpt-1 or gpt-2?"
    runs[0].metrics["seconds"] = 3.0  # an order the question does not ask about stays out
    assert [line.split(":")[0] for line in compare.compared(runs, asked)] == ["- val_loss"]
    keep = compare.in_order(runs, asked)
    assert not keep("The run with the lower val loss is gpt-1.") and not keep("gpt-2.")
    assert keep("gpt-1 and gpt-2 have the same val loss, 4.0334.")
    assert compare.at_ends("sample from my best run", runs) == []  # no end to pick


def test_a_nested_config_reads_as_the_records_own_settings():
    from types import SimpleNamespace as NS

    base = {"n_layer": 1, "max_iters": 80, "out_dir": "/ws/runs/ablation-1/baseline"}
    art = NS(id="ablation-1", kind="ablation", name="ablation-1", metrics={"status": "done"}, path="/ws",
             config={"base": base, "switches": ["no_dropout"], "space": {"lr": {"low": 1e-4}}})  # fmt: skip
    (rec,) = state.from_registry([art])
    assert rec.config == {
        "n_layer": 1,
        "max_iters": 80,
        "out_dir": base["out_dir"],
        "switches": ["no_dropout"],
        "space": ["lr"],  # the names of a nested config of nested ones: the settings searched
    }
    assert "max_iters=80" in compare.facts([rec]) and "baseline" not in compare.facts([rec])


def test_a_number_no_record_could_hold_is_looked_up_in_the_documents():
    tools = {"search_documents": {"parameters": {"properties": {"query": {}, "index": {"default": "last"}}}},
             "ablate_gpt": {"parameters": {"properties": {"n_layer": {}}}}}  # fmt: skip
    index = Record(id="index-1", kind="index", name="stratus", turn=0)
    prior = {"answer": 0.42, "ablate_gpt": 0.32, "search_documents": 0.14}
    asked = "there's an ablation table in the char-level project - what val loss did the full baseline reach?"
    assert state.unheld_lookup(prior, tools, [index], asked, 0.05) == "search_documents"
    assert state.unheld_lookup(prior, tools, [index, *RUNS], asked, 0.05) is None  # a run could hold it
    assert state.unheld_lookup(prior, tools, [], asked, 0.05) is None  # no documents either
    assert (
        state.unheld_lookup(prior, tools, [index], asked, 0.05, after_lookup=True) is None
    )  # in the passages
    assert state.unheld_lookup(prior, tools, [index], "thanks, that helps", 0.05) is None  # asks no number


def test_a_request_naming_a_record_goes_to_a_tool_that_takes_it():
    recs = [Record(id="adapter-1", kind="adapter", name="ticket-lora", config={"r": 8}),
            Record(id="run-1", kind="run", name="gpt-1", config={"n_layer": 2})]  # fmt: skip
    tools = {"generate_with_adapter": {"parameters": {"properties": {"adapter": {"default": "last"}}}},
             "merge_lora": {"parameters": {"properties": {"adapter": {"default": "last"}}}},
             "sample_gpt": {"parameters": {"properties": {"run": {"default": "last"}}}}}  # fmt: skip
    prior = {"answer": 0.6, "merge_lora": 0.1, "generate_with_adapter": 0.2, "sample_gpt": 0.1}
    choices = [*tools, "answer"]
    said = "Use the ticket-lora adapter to answer: my invoice shows a double charge, what now?"
    assert state.named_tool(prior, choices, tools, recs, said) == "generate_with_adapter"
    assert (
        state.named_tool(prior, choices, tools, recs, "what rank did ticket-lora use?") is None
    )  # its record
    assert state.named_tool(prior, choices, tools, recs, "what is a double charge?") is None  # names nothing
    # a name of the user's own that no record has still names an adapter ("crossword-lora")
    gen = "gen w/ crossword-lora, max 64 toks: 'Clue: feline pet (3)'"
    assert state.named_tool(prior, choices, tools, recs, gen) is None  # the bank leans to answering (0.6)
    assert state.named_tool(prior, choices, tools, [], "what rank did crossword-lora use?") is None
    asking = {**prior, "answer": 0.57, "generate_with_adapter": 0.29}  # the bank on "what is q-lora?"
    assert state.named_tool(asking, choices, tools, [], "what is q-lora?") is None
    sure = {**prior, "answer": 0.04, "generate_with_adapter": 0.83}
    assert state.named_tool(sure, choices, tools, [], gen) == "generate_with_adapter"
    # a word no request used, after a verb that asks for a tool: a name for the bank's favourite tool
    unseen, verbs = (
        (lambda w: w.lower() == "conchiglie"),
        (lambda n: {"ask"} if n == "generate_with_adapter" else set()),
    )
    ask = "ask conchiglie: how long should I boil an egg?"
    leaning = {**prior, "answer": 0.34, "generate_with_adapter": 0.5}
    assert state.named_tool(leaning, choices, tools, [], ask, unseen, verbs) == "generate_with_adapter"
    assert state.named_tool(leaning, choices, tools, [], ask) is None  # without the bank's words
    assert (
        state.named_tool(prior, choices, tools, [], ask, unseen, verbs) is None
    )  # the bank leans to answering
    assert (
        state.named_tool(leaning, choices, tools, [], "ask me: how long?", unseen, verbs) is None
    )  # no name


def test_an_adapter_is_described_by_its_base():
    recs = [Record(id="adapter-1", kind="adapter", name="ad-1", config={"base": "qwen2.5-coder-0.5b", "data": "demo"}),
            Record(id="adapter-2", kind="adapter", name="ad-2", config={"base": "smollm2-135m", "data": "demo"})]  # fmt: skip
    assert state.resolve("adapter", "last", "ask the adapter built on SmolLM: why?", recs, "last") == "ad-2"
    assert state.resolve("adapter", "last", "ask the qwen adapter: why?", recs, "last") == "ad-1"
    assert state.resolve("adapter", "last", "ask the demo adapter: why?", recs, "last") == "last"  # both


def test_a_superlative_picks_the_record_at_that_end_of_the_order_it_names():
    runs = [Record(id=f"run-{i}", kind="run", name=f"gpt-{i}", config={"n_layer": layers},
                   metrics={"val_loss": loss, "params": params})
            for i, layers, loss, params in ((3, 1, 2.25, 60000), (2, 2, 2.08, 110000), (1, 4, 1.97, 210000))]  # fmt: skip
    assert [
        r.name for r in compare.at_ends("LoRA-tune whichever of my models has the lowest val loss", runs)
    ] == ["gpt-1"]
    assert [r.name for r in compare.at_ends("sample from my worst run", runs)] == [
        "gpt-3"
    ]  # a loss: worse is higher
    assert [r.name for r in compare.at_ends("resume the deepest one", runs)] == ["gpt-1"]
    # every degree of a size adjective: "the shallowest", "the narrower"
    assert [
        r.name for r in compare.at_ends("LoRA-tune the shallowest of my runs with data/limericks.jsonl", runs)
    ] == ["gpt-3"]
    assert state.degrees("big") == {"big", "bigger", "biggest"} and "widest" in state.degrees("wide")
    assert state.degrees("shallow") == {"shallow", "shallower", "shallowest"}
    toks = [Record(id=f"tokenizer-{i}", kind="tokenizer", name=f"tk-{i}", config={"vocab_size": v})
            for i, v in ((1, 300), (2, 8000), (3, 1000))]  # fmt: skip
    assert [
        r.name
        for r in compare.at_ends("how does my biggest-vocabulary tokeniser compare with OpenAI's?", toks)
    ] == ["tk-2"]
    # "bigger" measures a tokenizer by its vocabulary, as it measures a run by its parameters
    assert [r.name for r in compare.at_ends("encode 'offside' with the bigger of my tokenizers", toks)] == [
        "tk-2"
    ]
    assert [r.name for r in compare.at_ends("encode it with my smallest tokenizer", toks)] == ["tk-1"]
    assert compare.at_ends("sample from gpt-2", runs) == []  # no end named
    assert compare.at_ends("not the lowest val loss but the highest", runs) == []  # both ends: no one record
    # a count before the records' noun takes that many from the end; a comparative still picks one
    assert [r.name for r in compare.at_ends("plot the two runs with the lowest validation loss", runs)] == [
        "gpt-1", "gpt-2"]  # fmt: skip
    assert [r.name for r in compare.at_ends("my 2 deepest models", runs)] == ["gpt-1", "gpt-2"]
    # the superlative's own adjective names the order, not another number the clause speaks of: "loss"
    # here is what is plotted (the worst-loss two are gpt-3 and gpt-2)
    assert [r.name for r in compare.at_ends("plot the loss curves of my two deepest models", runs)] == [
        "gpt-1", "gpt-2"]  # fmt: skip
    assert state.graded_keys("the wider one") == {"n_embd"} and state.graded_keys("the lowest loss") == set()
    assert [r.name for r in compare.at_ends("the better of my two runs", runs)] == ["gpt-1"]
    # the count's noun after a compound of the order's words
    lowest = compare.at_ends("chart my two lowest-val-loss runs side by side", runs)
    assert [r.name for r in lowest] == ["gpt-1", "gpt-2"]
    assert [r.name for r in state.in_made_order(lowest)] == sorted(r.name for r in lowest)


def test_the_users_own_data_by_any_name_dangles_when_the_lab_has_no_file():
    # "train a tokeniser on my diary entries" trained on the default dataset, not the diary
    assert state.dangling("train a tokeniser on my diary entries", "dataset", TOKS)
    assert state.dangling("fit a gpt from our chat logs", "dataset", RUNS)
    assert not state.dangling("train a tokeniser with my favourite vocab size", "dataset", TOKS)
    assert not state.dangling(
        "train a small model on my sailing tokenizer", "dataset", TOKS
    )  # a record, no data
    assert not state.dangling("train a tokeniser on my diary entries", "tokenizer", [])
    notes = Record(id="file-1", kind="file", name="diary.txt", config={})
    assert not state.dangling("train a tokeniser on my diary entries", "dataset", [notes])
    # a pronoun for the data points at nothing in an empty lab; with any record, it may point at one
    assert state.dangling("train a tokenizer on it", "dataset", [])
    assert not state.dangling("train a tokenizer on it", "dataset", TOKS)
    assert not state.dangling("train a tokenizer on it with 500 merges", "tokenizer", [])
    assert not state.dangling("train it on shakespeare", "dataset", [])  # "it" is no data there


def test_a_name_the_user_gave_a_record_is_kept_when_the_lab_has_none_by_it():
    # "compare tok-astro against cl100k" compared the newest tokenizer instead of the one named
    clause = "compare tok-astro against cl100k and o200k on data/star_logs.txt"
    assert resolve("tokenizer", None, clause, TOKS, "last") == "tok-astro"
    assert resolve("tokenizer", None, clause, [], "last") == "tok-astro"
    assert resolve("adapter", None, "gen w/ crossword-lora, max 64 toks", [], "last") == "crossword-lora"
    assert state.own_name("train a bpe tokenizer and call it tok-astro", ["tokenizer"]) is None  # the new one
    assert state.own_name("fine-tune gpt-1 with lora on a multi-head model", ["adapter"]) is None
    assert state.own_name("encode it with tk-esp or tk-cat", ["tokenizer"]) is None  # two: no one


def test_a_built_in_named_by_all_the_words_of_its_name():
    desc = "What to adapt: a GPT run id or name, 'last', or a pretrained base 'qwen2.5-coder-0.5b' or 'smollm2-135m'."
    clause = "I'd like the Qwen coder base to learn quiz answering from data/qa.jsonl"
    assert resolve("base", None, clause, RUNS, "last", desc) == "qwen2.5-coder-0.5b"
    assert (
        resolve("base", None, "adapt the coder on data/qa.jsonl", RUNS, "last", desc) != "qwen2.5-coder-0.5b"
    )


def test_a_record_described_by_a_setting_it_lacks():
    toks = [Record(id="tokenizer-1", kind="tokenizer", name="plain320", config={"vocab_size": 320, "pattern": "none"}),
            Record(id="tokenizer-2", kind="tokenizer", name="split320", config={"vocab_size": 320, "pattern": "gpt2"})]  # fmt: skip
    clause = "encode 'attention heads' with the one that has no split pattern"
    assert resolve("tokenizer", None, clause, toks, "last") == "plain320"
    other = "encode 'attention heads' with the split pattern one"
    assert resolve("tokenizer", None, other, toks, "last") != "plain320"


def test_a_list_the_model_wrote_keeps_to_the_records_the_clause_names():
    runs = [Record(id="run-1", kind="run", name="maple", config={"n_layer": 2}),
            Record(id="run-4", kind="run", name="maple-lora-2-merged", config={"n_layer": 2})]  # fmt: skip
    assert resolve("runs", ["maple-lora-2-merged"], "plot maple's loss curve", runs, "last") == ["maple"]
    assert resolve("runs", ["maple", "run-4"], "plot maple and run-4", runs, "last") == ["maple", "run-4"]
    assert resolve("runs", ["run-4"], "plot all my runs", runs, "last") == ["run-4"]  # names none: as written


def test_a_source_described_with_its_noun_picks_the_record_that_used_it():
    # "whichever model uses my knitting tokenizer": both jobs' runs trained on the knitting patterns,
    # one with the knitting tokenizer (tk-knit), one character-level
    jobs = [Record(id="job-5", kind="job", name="job-5",
                   config={"dataset": "data/knitting_patterns.txt", "tokenizer": "tk-knit", "n_layer": 2}),
            Record(id="job-6", kind="job", name="job-6",
                   config={"dataset": "data/knitting_patterns.txt", "tokenizer": "char", "n_layer": 2})]  # fmt: skip
    clause = "how far along is the trainign of whichever model uses my knitting tokenizer?"
    assert state.resolve("job_id", None, clause, jobs, None) == "job-5"
    assert state.resolve("job_id", None, "stop the one on the knitting patterns", jobs, None) is None  # both


def test_a_name_shaped_word_no_argument_holds_is_the_one_record_the_tool_takes():
    # "decode [256, 300, 301] using lamp1k" decoded with the newest tokenizer: the model left it out
    props = {"ids": {"type": "array"}, "tokenizer": {"type": "string", "default": "last",
             "description": "A tokenizer's name, 'last', or 'cl100k_base' / 'o200k_base'."}}  # fmt: skip
    assert state.glued_names("use lamp1k, bard350 or wren2; not r4, cl100k, gpt-2 or 3e-4") == [
        "lamp1k", "bard350", "wren2"]  # fmt: skip
    clause = "decode [256, 300, 301] using lamp1k"
    assert state.stray_name(clause, {"ids": [256, 300, 301]}, props) == ("tokenizer", "lamp1k")
    assert state.stray_name(clause, {"tokenizer": "tk-1"}, props) is None  # the argument is set
    assert state.stray_name(clause, {}, props, taken=["lamp1k"]) is None  # a record or the new name
    assert state.stray_name("decode [3] with lamp1k or bard350", {}, props) is None  # which one?
    two = {**props, "run": {"type": "string"}}
    assert state.stray_name(clause, {}, two) is None  # the tool takes two records: which is it?
    # a free text that copies the request holds no name; one that gives a text does
    said = "is lamp1k any good on this text compared with gpt-4o's?"
    texted = {**props, "text": {"type": "string"}}
    assert state.stray_name(said, {"tokenizer": "last", "text": said}, texted) == ("tokenizer", "lamp1k")
    assert state.stray_name("encode lamp1k please", {"text": "lamp1k"}, texted) is None
    # the text after a colon is handed on, and holds its own words ("... for a wobbly ...")
    unfamiliar = lambda w: w in ("lamp1k", "wobbly")  # noqa: E731
    handed = "have lamp1k answer this: what is good for a wobbly table?"
    assert state.stray_name(handed, {"text": "what is good for a wobbly table?"}, texted, (), unfamiliar) == (
        "tokenizer", "lamp1k")  # fmt: skip


def test_a_question_naming_a_record_and_one_of_its_keys_is_about_that_record():
    tok = Record(id="tokenizer-1", kind="tokenizer", name="sonnet320", config={"vocab_size": 320},
                 metrics={"num_merges": 64, "compression": 1.51})  # fmt: skip
    assert state.asks_about_record("remind me how many merge rules sonnet320 holds?", [tok])
    assert state.asks_about_record("what vocab size did sonnet320 get?", [tok])
    assert not state.asks_about_record("tokenise 'my kingdom' with sonnet320", [tok])  # no key of it
    assert not state.asks_about_record("how many merge rules does it hold?", [tok])  # names none


def test_a_word_no_request_of_the_bank_used_is_a_stray_name_in_a_records_slot():
    # "decode [...] using obsidian" decoded with the newest tokenizer; "stop thistle-lr" asked which sweep
    props = {"ids": {"type": "array"}, "tokenizer": {"type": "string", "default": "last",
             "description": "A tokenizer's name, 'last', or 'cl100k_base' / 'o200k_base'."}}  # fmt: skip
    seen = {"decode", "using", "with", "the", "newest", "tokenizer", "stop", "that", "sweep", "has", "run",
            "long", "enough", "lr", "kindly"}  # fmt: skip
    unfamiliar = lambda w: any(t not in seen for t in w.lower().split("-"))  # noqa: E731
    assert state.unseen_words("stop thistle-lr, that sweep has run long enough", unfamiliar, {"stop"}) == [
        "thistle-lr"]  # fmt: skip
    assert state.unseen_words("decode x2 using data/obsidian.txt", unfamiliar) == []  # paths, digits
    assert state.unseen_words("obsidian: decode it", unfamiliar) == []  # no record's slot
    # after "called" a record's name follows, when the tool makes nothing the name could be for
    assert state.stray_name("how does the tokeniser called jive do", {}, props, unfamiliar=lambda w: w == "jive") == (
        "tokenizer", "jive")  # fmt: skip
    # a question's subject, after its auxiliary: "how does mimas stack up against OpenAI's?"
    assert state.stray_name("how does mimas do against cl100k", {}, props, unfamiliar=lambda w: w == "mimas") == (
        "tokenizer", "mimas")  # fmt: skip
    clause = "decode [84, 104, 105] using obsidian"
    assert state.stray_name(clause, {"tokenizer": "last"}, props, unfamiliar=unfamiliar) == (
        "tokenizer", "obsidian")  # fmt: skip
    assert state.stray_name(clause, {"tokenizer": "last"}, props) is None  # without the bank
    assert (
        state.stray_name("decode [3] with obsidian or with basalt", {}, props, unfamiliar=unfamiliar) is None
    )
    # the default the request says is kept: "keep fiddling with a char-level model" is no tokenizer
    char = {"tokenizer": {"type": "string", "default": "char"}, "lr": {"type": "number"}}
    assert state.stray_name("keep fiddling with a char-level model", {"tokenizer": "char"}, char,
                            unfamiliar=lambda w: w == "fiddling", verbs={"keep"}) is None  # fmt: skip
    # a word an argument holds is no stray: the query of a search holds its topic words
    search = {"query": {"type": "string"}, "index": {"type": "string", "default": "last"}}
    assert (
        state.stray_name("search with obsidian", {"query": "obsidian"}, search, unfamiliar=unfamiliar) is None
    )


def test_a_records_slot_is_past_a_determiner_or_beside_its_kinds_noun():
    seen = {"write", "something", "with", "the", "model", "how", "does", "my", "tokenizer", "stack", "up",
            "sweep", "status", "for", "q", "dense", "search"}  # fmt: skip
    unfamiliar = lambda w: w.lower() not in seen  # noqa: E731
    assert state.unseen_words("write something with the banjo model", unfamiliar) == ["banjo"]
    run = {"run": {"type": "string", "default": "last"}, "prompt": {"type": "string"}}
    assert state.stray_name("write something with the banjo model", {}, run, unfamiliar=unfamiliar) == (
        "run",
        "banjo",
    )
    tok = {"tokenizer": {"type": "string", "default": "last"}, "text": {"type": "string"}}
    assert state.stray_name("how does my tokenizer zither stack up", {}, tok, unfamiliar=unfamiliar) == (
        "tokenizer", "zither")  # fmt: skip
    index = {"query": {"type": "string"}, "index": {"type": "string", "default": "last"}}
    assert state.stray_name("q idx shannon dense", {"query": "q"}, index, unfamiliar=unfamiliar) == (
        "index", "shannon")  # fmt: skip
    # beside another kind's noun, with no linking word or verb before it, a word names no index
    assert state.stray_name("search the banjo model", {}, index, unfamiliar=unfamiliar) is None
    # one slip from a word of `taken` (the tool's own name) is that word mistyped, not a name
    sweep = {"sweep": {"type": "string", "default": "last"}}
    words = ["sweep", "status"]
    assert state.stray_name("sweep staus for loire", {}, sweep, words, unfamiliar, {"sweep"}) == (
        "sweep",
        "loire",
    )
    assert state.stray_name("sweep staus", {}, sweep, [], unfamiliar, {"sweep"}) == ("sweep", "staus")


def test_the_gap_between_two_records_is_computed_so_by_how_much_is_grounded():
    from scratchlab.agent.grounding import ground_reply

    a = Record(id="run-1", kind="run", name="clover", metrics={"val_loss": 3.2518})
    b = Record(id="run-2", kind="run", name="clover4", metrics={"val_loss": 3.252})
    shown = facts([a, b], clause="which ended with the lower val loss, and by how much?")
    reply = "clover ended with the lower val loss, by 0.0002."
    assert ground_reply(reply, [shown]) == reply  # was dropped: 0.0002 stood in no source


def test_the_last_turns_look_up_asked_again_is_answered_from_its_passages():
    from scratchlab.agent.carry import same_lookup

    search = {"properties": {"query": {}, "index": {}}, "required": ["query"]}
    call = {"name": "search_documents", "args": {"index": "tagus", "query": "gradient clipping"}, "id": "c1"}
    msgs = [HumanMessage("look up gradient clipping in tagus"), AIMessage("", tool_calls=[call]),
            ToolMessage("2 passage(s) ...", tool_call_id="c1"), AIMessage("It clips to 1.0."),
            HumanMessage("what norm do they clip to?")]  # fmt: skip
    assert same_lookup("search_documents", {"query": "Gradient clipping"}, search, msgs)
    assert not same_lookup("search_documents", {"query": "weight tying"}, search, msgs)  # a new look-up
    # a query that adds no word to the last one is the same look-up: "what is it, exactly?"
    assert same_lookup("search_documents", {"query": "clipping"}, search, msgs)
    assert same_lookup("search_documents", {"query": "gradient clip"}, search, msgs)
    assert not same_lookup("search_documents", {"query": "gradient clipping with warmup"}, search, msgs)
    assert same_lookup(
        "search_documents", {"query": "what is it, exactly?"}, search, msgs
    )  # no topic of its own
    assert not same_lookup(
        "search_documents", {"query": "gradient clipping", "k": 8}, search, msgs
    )  # more passages
    assert not same_lookup("recall", {"query": "gradient clipping"}, search, msgs)  # another tool
    train = {"properties": {"n_layer": {}}, "required": []}
    assert not same_lookup("train_gpt", {}, train, msgs)  # no look-up: running it again is the request
    assert not same_lookup(
        "search_documents", {"query": "gradient clipping"}, search, msgs[:1]
    )  # no turn before


def _lab(kind: str, key: str, *named: tuple[str, str]) -> list[Record]:
    """Records of one kind, each with one setting: `_lab("run", "dataset", ("ash", "x.txt"))`."""
    return [Record(id=f"{kind}-{name}", kind=kind, name=name, config={key: value}) for name, value in named]


def test_a_list_of_records_the_clause_describes_replaces_the_models_guess():
    chess = "data/chess_games.txt"
    lab = _lab("run", "dataset", ("ash", chess), ("elm", chess), ("fir", "data/haiku.txt"))
    said = "plot the loss curves of every run trained on the chess games"
    assert resolve("runs", ["fir"], said, lab, "last") == ["ash", "elm"]
    assert resolve("runs", ["fir"], "plot fir's loss curve", lab, "last") == ["fir"]  # named
    assert resolve("runs", ["fir", "ash"], "plot my runs' loss curves", lab, "last") == [
        "fir",
        "ash",
    ]  # no description


def test_a_description_that_several_records_fit_equally_is_ambiguous():
    from scratchlab.agent.state import ambiguous

    qwen = "qwen2.5-coder-0.5b"
    lab = _lab("adapter", "base", ("pike", qwen), ("perch", qwen), ("carp", "smollm2-135m"))
    assert ambiguous("chat with my qwen adapter", "adapter", lab)  # two fit
    assert not ambiguous("chat with my smollm2 adapter", "adapter", lab)  # one fits
    assert not ambiguous("chat with pike, my qwen adapter", "adapter", lab)  # named
    assert not ambiguous("chat with my adapter", "adapter", lab)  # no description: the newest, as before
    assert not ambiguous("chat with my qwen adapter", "adapter", lab[:2])  # all fit: nothing told apart
    assert not ambiguous("chat with my qwen adapter", "run", lab)  # no run in the lab
    runs = [Record(id=f"run-{i}", kind="run", name=n, metrics={"status": s})
            for i, (n, s) in enumerate([("a1", "cancelled"), ("b2", "cancelled"), ("c3", "done")])]  # fmt: skip
    assert ambiguous("pick up the run I stopped", "run", runs)


def test_a_question_about_a_setting_of_the_record_touched_last_is_about_that_record():
    from scratchlab.agent.state import asks_last_touched

    run = Record(id="run-2", kind="run", name="quill", config={"n_embd": 96, "n_head": 3}, turn=1)
    old = Record(id="tok-1", kind="tokenizer", name="nib", config={"vocab_size": 300}, turn=0)
    assert asks_last_touched("and how many heads was that?", [old, run])
    assert not asks_last_touched("and its vocab size?", [old, run])  # the tokenizer was touched before
    assert not asks_last_touched("what does attention do?", [old, run])  # no setting of the run asked
    index = Record(id="index-1", kind="index", name="guides", config={"path": "docs"}, turn=2)
    assert not asks_last_touched("how many heads does their example use?", [old, run, index])  # a look-up
    untouched = dataclasses.replace(run, turn=None)
    assert not asks_last_touched("and how many heads was that?", [untouched])  # the conversation made none


def test_the_facts_an_answer_gets_lead_with_what_the_question_names():
    run = Record(id="run-1", kind="run", name="quill", config={"n_layer": 2, "n_head": 2, "n_embd": 64})
    asked = facts([run], clause="how many dimensions does each attention head get?")
    assert "settings: head_size=32, n_head=2," in asked  # the 1.5B read n_embd=64 first and said 64
    assert facts([run], clause="what's its val loss?").endswith("n_embd=64, head_size=32")  # not asked: last
    ablation = Record(
        id="ablation-1", kind="ablation", name="abl", config={"max_iters": 50}, metrics={"n_runs": 4}
    )
    assert "settings: total_steps=200, max_iters=50" in facts(
        [ablation], clause="how many steps was that altogether?"
    )


def test_a_kept_fact_that_points_at_a_value_said_before_holds_that_value():
    from scratchlab.agent.carry import referred_values

    msgs = [HumanMessage("how long a context did the tutorial use?"),
            AIMessage("The tutorial's context length is 1,024 tokens, with a batch of 8."),
            HumanMessage("and its width?"), AIMessage("It used an embedding width of 768."),
            HumanMessage("remember that our baseline copies that context length")]  # fmt: skip
    fact = "our baseline copies that context length"
    assert referred_values(fact, msgs) == "our baseline copies that context length (1024)"
    assert referred_values("I like that embedding width", msgs) == "I like that embedding width (768)"
    assert referred_values("our baseline copies that context length of 512", msgs).endswith("of 512")  # said
    assert referred_values("I like that learning rate", msgs) == "I like that learning rate"  # none was said
    two = [HumanMessage("width 64 or width 128?"), HumanMessage("keep that width")]
    assert referred_values("keep that width", two) == "keep that width"  # two values: which one?
    assert referred_values("keep that width", msgs[-1:]) == "keep that width"  # nothing before


def test_settings_named_and_pointed_back_at_take_the_values_the_conversation_gave_them():
    from scratchlab.agent.carry import said_values

    lora = {"properties": {"r": {"type": "integer"}, "lora_alpha": {"type": "number"},
                           "lora_dropout": {"type": "number"}, "max_iters": {"type": "integer"}}}  # fmt: skip
    msgs = [HumanMessage("what r and lora_alpha do the LoraConfig examples set?"),
            AIMessage("The examples set:\n- r: 16\n- lora_alpha: 32\n- lora_dropout: 0.05"),
            HumanMessage("thanks"), AIMessage("You're welcome.")]  # fmt: skip
    said = "tune one on the demo data using the r and lora_alpha from those examples, 20 steps"
    assert said_values(said, lora, msgs, {"max_iters"}) == {"r": 16, "lora_alpha": 32}
    assert said_values("the same lora_dropout as before", lora, msgs, set()) == {"lora_dropout": 0.05}
    # stated, compared or not pointed at: left to the request and the model
    assert said_values("rank 4 and alpha 8 on that data", lora, msgs, {"r", "lora_alpha"}) == {}
    assert said_values("on that data with a bigger alpha", lora, msgs, set()) == {}
    assert said_values("use r and lora_alpha, 20 steps", lora, msgs, {"max_iters"}) == {}
    two = [AIMessage("r 8 in one example, r 16 in the other")]
    assert said_values("the r from those examples", lora, two, set()) == {}  # two values: which one?
    # named by a word the bank learned for it that its description opens with ("Peak learning rate")
    lr = {"properties": {"lr": {"type": "number", "description": "Peak learning rate; null for 2e-4."}}}
    said = [AIMessage("The QLoRA example trains with a learning rate of 2e-4.")]
    labels = {"learning": "lr", "rate": "lr", "model": "lr"}
    assert said_values("tune it with that learning rate", lr, said, set(), labels) == {"lr": 0.0002}
    assert said_values("tune it with that learning rate", lr, said, set()) == {}  # no word names lr
    assert (
        said_values("tune that model again", lr, said, set(), labels) == {}
    )  # "model" is no description word


def test_a_new_artifact_named_as_an_existing_record_goes_to_a_tool_that_takes_that_record():
    # "carry on with lute but take it to 400 steps" trained a new run, which could not be named lute
    tools = {"train_gpt": {"parameters": {"properties": {"name": {}, "dataset": {}, "tokenizer": {"default": "char"}}}},
             "resume_gpt": {"parameters": {"properties": {"run": {"default": "last"}, "max_iters": {}}}},
             "sample_gpt": {"parameters": {"properties": {"run": {"default": "last"}}}}}  # fmt: skip
    prior = {"train_gpt": 0.29, "resume_gpt": 0.6, "sample_gpt": 0.01}
    lute = Record("run-1", "run", "lute", turn=1)
    said = "carry on with lute but take it to 400 steps this time"
    assert state.named_record_tool("train_gpt", prior, tools, [lute], said, None) == "resume_gpt"
    liked = {**prior, "train_gpt": 0.8}
    assert state.named_record_tool("train_gpt", liked, tools, [lute], "train a gpt like lute", None) is None
    assert (
        state.named_record_tool("train_gpt", prior, tools, [lute], said, "lute2") is None
    )  # a new name said
    assert state.named_record_tool("train_gpt", prior, tools, [], said, None) is None  # no such record
    assert state.named_record_tool("resume_gpt", prior, tools, [lute], said, None) is None  # it takes runs
    # a record described by its kind's noun and its config counts as named
    chess = Record("run-2", "run", "pavane", {"dataset": "data/chess_games.txt"})
    other = Record("run-3", "run", "allemande", {"dataset": "shakespeare"})
    pull = "Pull 200 tokens out of the GPT whose training data was the chess games."
    sampled = {"train_gpt": 0.05, "sample_gpt": 0.44, "resume_gpt": 0.02}
    assert state.named_record_tool("train_gpt", sampled, tools, [chess, other], pull, None) == "sample_gpt"
    assert (
        state.named_record_tool("train_gpt", sampled, tools, [chess, other], "train on the chess games", None)
        is None
    )


def test_a_number_the_request_gives_its_own_setting_does_not_describe_another_records():
    runs = [
        Record("run-3", "run", "kite", {"n_layer": 2, "n_head": 4, "n_embd": 256}),
        Record("run-2", "run", "lark", {"n_layer": 6, "n_head": 6, "n_embd": 192}),
    ]
    clause = "adapt the 192-wide run to data/faq.jsonl at rank 4"
    assert resolve("base", None, clause, runs, "last") is None  # 192 and 4 each describe one: a tie
    assert resolve("base", None, clause, runs, "last", spent={4.0: "r"}) == "lark"  # the 4 is the rank
    # a number that describes by the setting it is given still counts ("like the 4-head run, 4 heads")
    assert (
        resolve("run", None, "the 4-head one again with 4 heads", runs, "last", spent={4.0: "n_head"})
        == "kite"
    )


def test_a_record_is_described_through_the_record_it_was_made_from():
    recs = [
        Record("run-2", "run", "kite", {"n_layer": 2, "tokenizer": "tk-a"}),
        Record("run-1", "run", "lark", {"n_layer": 2, "tokenizer": "tk-b"}),
        Record("tokenizer-2", "tokenizer", "tk-b", {"vocab_size": 2048}),
        Record("tokenizer-1", "tokenizer", "tk-a", {"vocab_size": 512}),
    ]
    clause = "sample from the model I trained with the 2048-token tokenizer"
    assert resolve("run", None, clause, recs, "last") == "lark"
    assert (
        resolve("run", None, "sample from the model trained with a 4096-token tokenizer", recs, "last")
        is None
    )
    adapters = [
        Record("adapter-2", "adapter", "a2", {"base": "kite"}),
        Record("adapter-1", "adapter", "a1", {"base": "lark"}),
    ]
    # its source named, not described: the base word already picks it (unchanged)
    assert resolve("adapter", None, "merge the adapter on the lark run", [*adapters, *recs], "last") == "a1"


def test_a_count_of_them_means_the_records_the_conversation_spoke_of_last():
    recs = [Record("run-3", "run", "kite", turn=2), Record("run-2", "run", "lark", turn=1),
            Record("run-1", "run", "wren", turn=None)]  # fmt: skip
    assert [r.name for r in state.plural("compare the two of them", "runs", recs)] == ["lark", "kite"]
    assert [r.name for r in state.plural("compare all three of those", "runs", recs)] == [
        "wren",
        "lark",
        "kite",
    ]
    assert state.plural("which of the two is better?", "runs", recs) == []  # no count of records


def test_one_of_them_is_ambiguous_among_records_the_conversation_spoke_of():
    runs = [
        Record("run-2", "run", "lark", {"n_layer": 4}, turn=1),
        Record("run-1", "run", "kite", {"n_layer": 2}, turn=0),
    ]
    assert state.ambiguous("sample from one of them", "run", runs)
    assert not state.ambiguous("sample from one of them, the 2-layer one", "run", runs)  # described
    unspoken = [dataclasses.replace(r, turn=None) for r in runs]
    assert not state.ambiguous(
        "good, train one of those for 150 steps", "run", unspoken
    )  # a kind, not a record


def test_it_after_a_call_that_touched_no_index_is_that_call():
    idx = Record("index-1", "index", "guides", turn=0)
    assert state.about_last_call("what total did it print?", [idx], last_turn=2)  # a program ran last
    assert not state.about_last_call("look up the batch size in it", [dataclasses.replace(idx, turn=2)], 2)
    assert not state.about_last_call("what total did the program print?", [idx], 2)  # no pronoun


def test_a_tie_that_a_number_of_the_requests_own_settings_makes_is_no_ambiguity():
    runs = [Record("run-3", "run", "kite", {"n_layer": 2, "n_head": 4, "n_embd": 256}),
            Record("run-2", "run", "lark", {"n_layer": 6, "n_head": 6, "n_embd": 192}),
            Record("run-1", "run", "wren", {"n_layer": 3, "n_head": 3, "n_embd": 96})]  # fmt: skip
    clause = "adapt the 192-wide run to data/faq.jsonl at rank 4"
    assert state.ambiguous(clause, "base", runs)  # 192 picks lark, 4 picks kite
    assert not state.ambiguous(clause, "base", runs, spent={4.0: "r"})  # the 4 is the rank


def test_it_right_after_a_call_does_not_point_at_the_index_touched_before():
    idx = Record("index-1", "index", "guides", turn=1)
    search = {
        "search_documents": {
            "parameters": {"properties": {"query": {"type": "string"}, "index": {"default": "last"}}}
        }
    }
    prior = {"answer": 0.9, "search_documents": 0.05}
    choices = ["search_documents", "answer"]
    said = "what total did it print?"
    assert state.tool_over_answer(prior, choices, search, [idx], 0.8, said) == "search_documents"
    assert state.tool_over_answer(prior, choices, search, [idx], 0.8, said, after_call=True) is None
