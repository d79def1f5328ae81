"""Structured conversation state: the lab's artifacts as records, and references resolved against them.

The agent never parses its own prompt text back. Each model call gets the registry's artifacts as
`Record`s (on the system message's `additional_kwargs["lab_records"]`, set by `scratchlab.agent.graph`)
and the thread's messages; from those it knows, for every artifact, its kind, config, metrics and the
last turn of this conversation that made or mentioned it. References resolve to records:

- a name or id the request writes ("bpe400-shakespeare", "run-3"), or a part of the one name that
  holds it ("my shakespeare tokenizer");
- a built-in value the argument's description names, for the model's near miss ("qwen 0.5b" ->
  'qwen2.5-coder-0.5b') or one the request writes out ("w/ 300 vocab on shakespeare");
- a description: a number or word of the request that is in exactly one record's config ("the
  1-layer run", "the tokenizer trained on notes.txt");
- a pronoun or a kind noun ("it", "that tokenizer", "the same file", "the tokenizer from before"):
  the record of that kind that this conversation touched last, else the newest in the lab;
- "both", "my last two runs": `plural`.

"the same ... but X" and "no, I meant X" are `scratchlab.agent.carry`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from scratchlab.agent.bank import (
    FUNCTION_WORDS,
    MISSPELT_RATIO,
    NAME_HEAD_CHARS,
    NUMBER_WORDS,
    as_number,
    phrase_ends,
    stem,
    tokens,
)
from scratchlab.agent.router import PUNCTUATION, REFERENCE_VALUES
from scratchlab.lab.jobs import ACTIVE
from scratchlab.lab.registry import DEFAULT_NAME_STEMS

# Which record kinds an argument of a tool refers to.
ARG_KINDS: dict[str, tuple[str, ...]] = {
    "tokenizer": ("tokenizer",),
    "run": ("run",),
    "base": ("run", "base"),
    "adapter": ("adapter",),
    "index": ("index",),
    "dataset": ("file",),
    "data": ("file",),
    "job_id": ("job",),
    "sweep": ("sweep", "research"),
    "runs": ("run", "adapter"),  # show_curves: a list of them
}
# Nouns by which a request names a kind of record ("that tokenizer", "the same text").
KIND_NOUNS: dict[str, set[str]] = {
    "tokenizer": {"tokenizer", "tokeniser", "tokenizers", "bpe", "vocab", "vocabulary"},
    "run": {"run", "runs", "model", "models", "gpt", "gpts", "network", "checkpoint"},
    "base": {"base", "model", "gpt"},
    "adapter": {"adapter", "adapters", "lora", "fine", "tuned"},
    "index": {
        "index",
        "indexes",
        "idx",
        "docs",
        "documents",
        "guide",
        "guides",
        "notes",
        "tutorial",
        "tutorials",
        "manual",
        "handbook",
    },
    "file": {"file", "files", "text", "data", "dataset", "corpus", "wrote", "written"},
    "dataset": {"dataset", "data", "text", "corpus", "docs", "documents", "texts"},
    "job": {"job", "jobs", "training"},
    "sweep": {"sweep", "sweeps", "study", "search", "trials"},
    "research": {"loop", "research", "experiment"},
    # text a request said before ("on that same phrase"): `carry.earlier_text`
    "text": {"phrase", "sentence", "text", "string", "line", "words", "quote", "snippet", "thing"},
    "prompt": {"prompt", "phrase", "sentence", "text", "opening", "line", "question", "thing"},
}
# "the first adapter", "the second one": the n-th record of the kind the conversation touched (oldest first)
ORDINALS = {"first": 0, "oldest": 0, "earliest": 0, "earlier": 0, "original": 0, "older": 0, "second": 1,
            "third": 2, "fourth": 3}  # fmt: skip
PLURAL = {
    "both": 2,
    "two": 2,
    "three": 3,
    "four": 4,
    "2": 2,
    "3": 3,
    "4": 4,
}  # "both runs", "my last two runs"
PRONOUNS = {"it", "its", "that", "this", "those", "these", "them", "same", "previous", "before", "earlier",
            "above", "just", "new", "latest", "last", "both", "one"}  # fmt: skip
# "my data", "that file": the user's own, not a default ("this text: ..." points at what follows)
POINTING = {"my", "our", "that", "those", "same"}
# Kinds whose content their records do not hold: a question pointing at one ("according to my notes",
# "what does the guide say ...") is answered by the tool that reads it, never from the model's memory.
CONTENT_KINDS = {"index": POINTING | {"the", "this", "these", "your"}}
CONTENT_PRONOUNS = {"they", "them", "their", "it", "those", "these"}  # "what do they say about ...?"
LOCATIVES = {
    "in",
    "inside",
    "within",
    "from",
}  # "anything in there on X?": that "there" is a place, not "is there"
SINGULAR_PRONOUNS = {"it", "its", "that", "this"}  # "what was its val loss?": one record
DESCRIBING_KEYS = (
    "n_layer",
    "n_head",
    "n_embd",
    "vocab_size",
    "r",
    "max_iters",
    "dropout",
    "block_size",
    "lr",
)
# config values whose words describe a record ("my physics notes": the index of ~/notes/physics; "the
# adapter built on SmolLM": the one whose base is smollm2-135m)
DESCRIBING_SOURCES = ("dataset", "data", "tokenizer", "path", "base")
# The words by which a request describes a record by its status ("the run that crashed", "the killed
# job"): a record's own status, or for an artifact its newest job's (`from_registry`)
STATUS_WORDS = {
    "failed": {
        "crashed",
        "crash",
        "died",
        "dead",
        "failed",
        "broke",
        "broken",
        "errored",
        "blew",
        "exploded",
        "diverged",
        "nan",
    },
    "cancelled": {"cancelled", "canceled", "killed", "aborted", "stopped", "halted"},
    "running": {"running", "ongoing", "unfinished"},
    "queued": {"queued", "pending"},
}
MAX_RECORDS = 40
MAX_ARTIFACTS = 30  # artifacts among the records; the rest is jobs
MAX_TRIALS = 5  # a sweep's trial runs among them: the newest (the sweep's record holds the best)
ARTIFACT_WINDOW = 200  # newest artifacts read from the registry, before trial runs are thinned
FACT_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_iters", "lr", "dropout", "vocab_size",
             "pattern", "dataset", "tokenizer", "base", "data", "r", "lora_alpha", "paths", "path", "switches")  # fmt: skip
# The results a question is most often about come first; any other scalar follows, paths never (a
# trainer's result holds ~25 keys and a fact line keeps 8: "params" came 13th and an answer took n_embd).
DERIVED_KEYS = (
    "head_size",
    "total_steps",
)  # computed for a question (`compare.facts`): n_embd // n_head, n_runs * max_iters
RESULT_KEYS = ("status", "val_loss", "best_val_loss", "train_loss", "params", "n_params", "trainable_params", "n_runs", "step",
               "perplexity", "bits_per_char", "tokens_per_sec", "seconds")  # fmt: skip


@dataclass
class Record:
    """One artifact (or job) as the agent sees it.

    Attributes:
        id: registry id ("run-3"); name: its name ("gpt-3"); kind: "run", "tokenizer", ...
        config: settings it was made with; metrics: results (val_loss, params, status...).
        path: its folder or file; turn: the last user turn (0-based) of this conversation whose tool
            results named it, None when the conversation never touched it.
    """

    id: str
    kind: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    turn: int | None = None

    def label(self) -> str:
        return self.name if self.name == self.id else f"{self.name} ({self.id})"

    @property
    def ref(self) -> str:
        """What a tool argument takes for this record: a file's path, else its name."""
        return self.path if self.kind == "file" and self.path else self.name


def flat_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """A config with the settings of a nested one lifted up, those of its own winning: an ablation's
    {"base": {"max_iters": 80, ...}, "switches": [...]} reads as {"max_iters": 80, ..., "switches": [...]}
    (rendered whole, its base was a dict cut at a path: "base=baseline'}", and "how many steps did each
    variant get?" found no steps). A nested config of nested ones keeps their names: a sweep's
    {"space": {"n_embd": {...}}} reads as {"space": ["n_embd"]}, the settings it searches."""
    config = dict(config or {})
    inner = {
        k: v for d in config.values() if isinstance(d, dict) for k, v in d.items() if not isinstance(v, dict)
    }
    named = {
        k: list(d)
        for k, d in config.items()
        if isinstance(d, dict) and d and all(isinstance(v, dict) for v in d.values())
    }
    return {**inner, **named, **{k: v for k, v in config.items() if not isinstance(v, dict)}}


def from_registry(artifacts: Iterable[Any], jobs: Iterable[Any] = ()) -> list[Record]:
    """Records from registry `Artifact`s (newest first) and `Job`s: running or queued ones first, then
    ended ones ("stop it" after a background run that has since finished is about a job that exists,
    and the tool can say it ended; a request asking for the running job still finds it first).

    A job and the artifact it makes describe each other: the job takes the artifact's describing
    settings ("stop the job for the 256-wide model"), and an artifact without a status of its own takes
    its newest job's ("resume the run that crashed").

    Of a sweep's trial runs (their metrics name the study, `STUDY_KEYS`) only the newest `MAX_TRIALS`
    stay, and at most `MAX_ARTIFACTS` artifacts in all: a sweep of 40 short trials had pushed the sweep
    itself out of the records, and "ok that's enough, halt it" cancelled its job instead of stopping it."""
    arts = list(artifacts)
    trials = [a.id for a in arts if any((a.metrics or {}).get(k) for k in STUDY_KEYS)]
    dropped = set(trials[MAX_TRIALS:])
    arts = [a for a in arts if a.id not in dropped][:MAX_ARTIFACTS]
    out = [
        Record(id=a.id, kind=a.kind, name=a.name, config=flat_config(a.config), metrics=dict(a.metrics or {}),
               path=str(a.path or ""))
        for a in arts
    ]  # fmt: skip
    made = {r.id: r for r in out}
    jobs = list(jobs)
    for j in jobs:  # newest first: the newest job's status is the artifact's
        if (art := made.get(j.artifact_id or "")) is not None:
            art.metrics.setdefault("status", j.status)
    for j in sorted(jobs, key=lambda j: j.status not in ACTIVE):  # stable: newest first within
        art = made.get(j.artifact_id or "")
        describing = {
            k: v for k, v in (art.config if art else {}).items() if k in DESCRIBING_KEYS + DESCRIBING_SOURCES
        }
        out.append(Record(id=j.id, kind="job", name=j.id,
                          config={**describing, "kind": j.kind, "artifact": j.artifact_id,
                                  "artifact_name": art.name if art else None},
                          metrics={"status": j.status, "step": j.step, "total": j.total}))  # fmt: skip
    return out[:MAX_RECORDS]


def records_of(messages: Sequence[BaseMessage]) -> list[Record]:
    """The records that ride on the system message, with the turn each was last named in the thread."""
    if not messages or not isinstance(messages[0], SystemMessage):
        return []
    raw = (messages[0].additional_kwargs or {}).get("lab_records") or []
    recs = [Record(**(asdict(r) if isinstance(r, Record) else r)) for r in raw]  # copies: `turn` is set below
    turn = -1
    for m in messages[1:]:
        if isinstance(m, HumanMessage):
            turn += 1
        elif isinstance(m, ToolMessage | AIMessage):
            text = str(m.content) + (
                json.dumps([tc["args"] for tc in m.tool_calls]) if isinstance(m, AIMessage) else ""
            )
            low = set(tokens(text)) | set(text.split())
            for r in recs:
                if r.id in text or (
                    len(r.name) > 2 and (r.name in low or f"'{r.name}'" in text or r.name in text)
                ):
                    r.turn = turn
    return recs


def touched_now(messages: Sequence[BaseMessage], recs: Sequence[Record]) -> list[Record]:
    """The records this turn's tool calls or results named (`Record.turn` is the current turn)."""
    now = turn_of(messages)
    return [r for r in recs if r.turn is not None and r.turn == now]


def _whole_words(clause: str) -> set[str]:
    words = set(
        clause.lower().replace("'", " ").replace('"', " ").replace("`", " ").replace("=", " ").split()
    )
    return words | {w.strip(".,;:!?()") for w in words}


def names_in(clause: str, recs: Sequence[Record]) -> list[Record]:
    """Records whose name or id the clause writes as a whole word; a job is also named by the name of
    the artifact it makes ("kill the big-run training": the job training big-run), the running one
    first when several made it."""
    words = _whole_words(clause)
    named = [r for r in recs if r.id.lower() in words or r.name.lower() in words]
    if named:
        return named
    made = [r for r in recs if r.kind == "job" and str(r.config.get("artifact_name") or "").lower() in words]
    return made[:1]


def written_id(clause: str, kinds: Sequence[str]) -> str | None:
    """The one registry id of `kinds` the clause writes ("kill job-7" -> "job-7"), whether or not a
    record has it: an id names one thing, and the tool answers for an unknown one with the ones that
    exist, where the newest record of the kind would act on something the user did not name."""
    return _one_numbered(clause, set(kinds))


def _one_numbered(clause: str, stems: set[str]) -> str | None:
    """The one whole word of the clause that is a stem of `stems`, a hyphen and digits ("job-7")."""
    found = {
        w for w in _whole_words(clause) if w.partition("-")[0] in stems and w.partition("-")[2].isdigit()
    }
    return found.pop() if len(found) == 1 else None


def written_name(clause: str, kinds: Sequence[str]) -> str | None:
    """The one name of the form the tools give a new record of `kinds` that the clause writes
    ("resume gpt-9" -> "gpt-9" for runs, `DEFAULT_NAME_STEMS`), whether or not a record has it: as
    with `written_id`, the tool then says which ones exist, where the newest record would act on one
    the user did not name."""
    return _one_numbered(clause, {DEFAULT_NAME_STEMS[k] for k in kinds if k in DEFAULT_NAME_STEMS})


# The nouns (and their short forms) a user glues to a name of their own for a record of a kind:
# "tok-astro", "tk-esp", "crossword-lora", "idx_papers"
NAME_PARTS: dict[str, set[str]] = {
    "tokenizer": {"tok", "tk", "bpe", "tokenizer", "tokeniser"},
    "adapter": {"lora", "adapter"},
    "index": {"idx", "index"},
}
NAMING_WORDS = {"called", "named", "call", "name", "as"}  # what the new artifact will be called


def own_name(clause: str, kinds: Sequence[str]) -> str | None:
    """The one word of the clause that joins a noun of `kinds` (`NAME_PARTS`) to another part with a
    hyphen or underscore ("compare tok-astro against cl100k" -> "tok-astro"), unless it names the
    new artifact ("call it tok-astro", "named tok-astro"). As with `written_id`, the tool says which records exist when
    none has that name, where the newest record would act on one the user did not name."""
    parts_of = set().union(*(NAME_PARTS.get(k, set()) for k in kinds))
    words = clause.lower().replace("'", " ").replace('"', " ").replace("`", " ").split()
    found = set()
    for i, raw in enumerate(words):
        word = raw.strip(".,;:!?()")
        parts = word.replace("_", "-").split("-")
        if (
            len(parts) < 2
            or not all(p.isalnum() for p in parts)
            or NAMING_WORDS & set(words[max(0, i - 2) : i])
        ):
            continue
        if parts_of & set(parts):
            found.add(word)
    return found.pop() if len(found) == 1 else None


DATA_ARGS = ("dataset", "data")  # arguments that take the data a record was made from


def glued_names(clause: str) -> list[str]:
    """Words shaped like a name a user gives a record: `NAME_HEAD_CHARS`+ letters run straight into
    digits, with an optional k or m ("lamp1k", "bard350", "wren2"); the bank reads no setting's number
    there either (`bank._drop_model_numbers`)."""
    out = []
    for raw in clause.split():
        word = raw.strip(PUNCTUATION)
        cut = next((i for i, c in enumerate(word) if c.isdigit()), 0)
        if cut >= NAME_HEAD_CHARS and word[:cut].isalpha() and word[cut:].lower().rstrip("km").isdigit():
            out.append(word)
    return out


# "decode [...] using obsidian": a record's name follows
NAME_LINKS = {"using", "with", "via", "by", "for", "of", "called", "named"}
# a question's subject follows its auxiliary: "how does mimas stack up against ...", "did europa finish?"
QUESTION_AUXILIARIES = {"does", "did", "has", "is", "was"}
# "with the banjo model": skipped before a name
DETERMINERS = {"the", "my", "our", "your", "this", "that", "a", "an"}


def unseen_words(
    clause: str, unfamiliar: Callable[[str], bool], after: Collection[str] = NAME_LINKS,
    nouns: Collection[str] = (),
) -> list[str]:  # fmt: skip
    """The clause's words (split at spaces, edge punctuation off) in a record's slot that `unfamiliar`
    finds no word of the bank's requests (`Bank.unfamiliar`): the names users give records. A slot is
    right after a word of `after` (a linking word, or the verb that asks for the tool: "stop
    thistle-lr"), with any `DETERMINERS` between ("with the banjo model"), or right before or after one
    of `nouns`, the record's kind ("my tokenizer zither", "the banjo model", "idx shannon"). Paths and
    words with a digit are left to `glued_names` and the path rules."""
    raw = [w.strip(PUNCTUATION) for w in clause.split()]
    low = [w.lower() for w in raw]
    out = []
    for i, word in enumerate(raw):
        if "/" in word or not word[:1].isalpha() or any(c.isdigit() for c in word):
            continue
        j = i - 1
        while j >= 0 and low[j] in DETERMINERS:
            j -= 1
        beside = {low[k] for k in (i - 1, i + 1) if 0 <= k < len(low)}
        if ((j >= 0 and low[j] in after) or beside & set(nouns)) and unfamiliar(word):
            out.append(word)
    return out


def stray_name(
    clause: str, args: dict[str, Any], props: dict[str, Any], taken: Iterable[str] = (),
    unfamiliar: Callable[[str], bool] | None = None, verbs: Collection[str] = (), written: Iterable[str] = (),
) -> tuple[str, str] | None:  # fmt: skip
    """(argument, name) for the one name-shaped word of the clause (`glued_names`; with `unfamiliar`,
    also `unseen_words` after a linking word or one of `verbs`) that no argument holds, when the tool takes one record besides its data and the
    model left that argument to its default: "decode [256, 300, 301] using lamp1k" decoded with the
    newest tokenizer, where the tool would have said that no tokenizer is named lamp1k; "stop
    thistle-lr" asked which sweep. A word is no stray when it is in `taken` (the new artifact's name,
    the records' names: "a gpt like wren2" is no tokenizer; setting words, such as "iters5k"'s, the
    tool's enum values), or a word one slip from a word of `taken` (`MISSPELT_RATIO`: "sweep staus for
    loire" misspells the tool's own name), or a built-in the description names says it. Quoted text is
    the caller's to take out of `clause`. A value that copies most of the clause holds no name.
    `written`: words of the clause the model wrote into another argument, candidates too."""
    refs = [a for a in props if a in ARG_KINDS and a not in DATA_ARGS]
    if len(refs) != 1 or args.get(refs[0]) not in (None, props[refs[0]].get("default"), [], ["last"]):
        return None
    if isinstance(now := args.get(refs[0]), str) and now.lower() in tokens(clause):
        return None  # the default, said: "fiddling with a char-level model" keeps tokenizer 'char'

    def words(text: str) -> set[str]:  # its content words
        return {w.strip(PUNCTUATION) for w in text.lower().split()} - FUNCTION_WORDS

    # a free text that copies most of the request, its words before a colon too, holds no name ("how
    # does hoopoe squeeze text ...": the 1.5B passed the question as the text to compare on, and the
    # tokenizer as 'last'); the text after a colon is handed on ("have the pipit adapter answer this: ...")
    said, head = words(clause), words(clause.partition(":")[0])
    held = " ".join(str(v) for v in args.values()
                    if not (isinstance(v, str) and len(words(v) & said) * 2 > len(said) and words(v) & head)).lower()  # fmt: skip
    taken = {t.lower() for t in taken}
    known = " ".join(
        [*taken, *(b for p in props.values() for b in builtins(p.get("description", "") or ""))]
    ).lower()
    nouns = set().union(*(KIND_NOUNS.get(k, set()) for k in ARG_KINDS[refs[0]]))
    words = (
        glued_names(clause)
        + [w for w in written if w.lower() in tokens(clause)]
        + (
            unseen_words(clause, unfamiliar, NAME_LINKS | QUESTION_AUXILIARIES | set(verbs), nouns)
            if unfamiliar
            else []
        )
    )
    strays = {
        w for w in words
        if w.lower() not in held and w.lower() not in known and w.lower().rstrip("0123456789km") not in taken
        and not difflib.get_close_matches(w.lower(), taken, n=1, cutoff=MISSPELT_RATIO)  # "sweep staus"
    }  # fmt: skip
    return (refs[0], strays.pop()) if len(strays) == 1 else None


def _described(
    clause: str, recs: Sequence[Record], numbers: bool = True, several: bool = False,
    spent: Mapping[float, str] | None = None,
) -> list[Record]:  # fmt: skip
    """The records that a number or a word of their config picks out best ("the 1-layer run", "the
    tokenizer trained on notes.txt", "the character-level model": a run whose tokenizer is 'char'); a
    word counts when it is a config word, or starts with one of 4+ letters, or has its stem, or names
    the record's status (`STATUS_WORDS`: "the run that crashed"). Without `numbers`, only the words
    count. `spent` ({value: argument}): numbers the request gives the tool's own arguments; where
    several records fit equally well, such a number describes a record only by that setting ("LoRA the
    384-wide model with rank 8": the 8 is the adapter's rank, no run's 8 heads). Empty when none
    fits, or when several fit equally well and not `several`."""
    toks = tokens(clause)
    # "the 1-layer run", "the two-layer model"; a number word not glued to a setting counts things
    # ("which of the two runs ...?", "the first one")
    glued = _glued(clause)
    nums = set()
    for t in toks:
        v = as_number(t) if t[0].isdigit() else NUMBER_WORDS.get(t) if t in glued else None
        if v is not None:
            nums.add(float(v))
    words = {t for t in toks if not t[0].isdigit() and len(t) > 2 and t not in NUMBER_WORDS}

    def top(
        by: Mapping[float, str],
    ) -> tuple[int, list[Record]]:  # a number in `by` counts for its setting only
        scored = []
        for r in recs:
            vals = {float(v) for k, v in r.config.items()
                    if k in DESCRIBING_KEYS and isinstance(v, int | float) and by.get(float(v), k) == k}  # fmt: skip
            by_key = {k: {w for w in tokens(Path(str(v)).name.replace("_", " ")) if len(w) > 2}
                      for k in DESCRIBING_SOURCES if (v := r.config.get(k))}  # fmt: skip
            said = sum(any(_same_word(w, s) for ws in by_key.values() for s in ws) for w in words)
            # a source described together with its noun counts again: "my knitting tokenizer" is about the
            # tokenizer a run used (tk-knit), beside a run that only trained on the knitting patterns
            said += sum(bool(KIND_NOUNS.get(k, {k}).intersection(toks)) and any(_same_word(w, s) for w in words for s in ws)
                        for k, ws in by_key.items())  # fmt: skip
            said += bool(words & STATUS_WORDS.get(str(r.metrics.get("status")), set()))
            said += _lacks(toks, r.config)
            scored.append((2 * len(nums & vals) * numbers + said, r))
        best = max(s for s, _ in scored)
        return best, [r for s, r in scored if s == best]

    best, fit = top({})
    if spent and len(fit) > 1:  # a tie: the request's own settings describe by setting
        best, fit = top(spent)
    return fit if best > 0 and (len(fit) == 1 or several) else []


def described_records(text: str, recs: Sequence[Record]) -> list[Record]:
    """The records a text's words and numbers describe best, all of them when several fit equally
    (`_described`): "the GPT with 4 heads" of a 2-head and a 4-head run is the 4-head one."""
    return _described(text, recs, several=True)


def names_only_records(text: str, recs: Sequence[Record]) -> bool:
    """True when every content word of `text` (3+ letters, no function word) is a word of one
    record's name or sources (`DESCRIBING_SOURCES`: "glider checklists" for an index of
    ~/archive/glider_checklists): such a query names where to look, not what to look for."""
    words = {t for t in tokens(text) if len(t) > 2 and t not in FUNCTION_WORDS and not t.isdigit()}
    for r in recs:
        own = {w for v in (r.name, *(str(r.config.get(k, "")) for k in DESCRIBING_SOURCES)) if v
               for w in tokens(Path(v).name.replace("_", " ").replace("-", " ")) if len(w) > 2}  # fmt: skip
        if words and all(any(_same_word(w, s) for s in own) for w in words):
            return True
    return False


def _same_word(word: str, source_word: str) -> bool:
    """A clause's word is a source's word: the same stem, or it starts with the source's 4+ letters ("knitting", "knit")."""
    return stem(word) == stem(source_word) or (len(source_word) >= 4 and word.startswith(source_word))


LACKING = {"no", "without"}  # "the one with no split pattern": a setting the record has none of
EMPTY_VALUES = (None, "none", "None", False, "")


def _lacks(toks: Sequence[str], config: dict[str, Any]) -> int:
    """How many settings the clause says a record lacks ("no" or "without" and, within three words,
    a word of the key: "the one that has no split pattern") that it has as none, empty or off."""
    out = 0
    for key, value in config.items():
        if value not in EMPTY_VALUES:
            continue
        parts = {stem(w) for w in key.split("_") if len(w) > 2}
        out += any(
            t in LACKING and parts & {stem(w) for w in toks[i + 1 : i + 4]} for i, t in enumerate(toks)
        )
    return out


def _source(recs: Sequence[Record], files: Sequence[Record], clause: str = "") -> str | None:
    """The data a record was made from: the record the clause names, or describes with its kind's noun
    ("with my recipe tokeniser, on the same text it was trained on"), else the conversation's
    last-touched one ("train a gpt on those same docs" after a tokenizer built from ../shared/seeds),
    unless a file record was touched as late or later."""
    makers = [
        r
        for r in recs
        if r.kind not in ("file", "job") and any(isinstance(r.config.get(k), str) for k in DATA_ARGS)
    ]
    toks = set(tokens(clause))
    nouned = [r for r in makers if KIND_NOUNS.get(r.kind, set()) & toks - KIND_NOUNS["dataset"]]
    # the data's own words first: "a 2-layer gpt ... with my recipe tokeniser" is about the tokenizer
    picked = names_in(clause, makers) or (_described(clause, nouned, numbers=False) or _described(clause, nouned)
                                           if nouned else [])  # fmt: skip
    if len(picked) == 1:
        return picked[0].config.get("dataset") or picked[0].config.get("data")
    touched = [r for r in makers if r.turn is not None]
    if not touched:
        return None
    last = max(touched, key=lambda r: r.turn)
    if any(f.turn is not None and f.turn >= last.turn for f in files):
        return None
    src = last.config.get("dataset") or last.config.get("data")
    return src if isinstance(src, str) else None


STUDY_KEYS = ("sweep", "research")  # a trial run's metrics name the study it is part of (`sweep_trial`)


def about(clause: str, recs: Sequence[Record]) -> list[Record]:
    """The records a question is about: those it names and the one it describes ("the 2-layer run",
    `_described`) alone; else the ones it counts ("the two runs", "both models", `_counted`); else
    the one the conversation touched last when it says "it" or "that" (of the kind its nouns name, if
    any); else those of the kinds its nouns name ("which run ...?"); else the ones the conversation touched last,
    then the newest, jobs only when nothing else is left (a job's run is a record of its own). Alone,
    because the 1.5B, given the 2-layer run's facts first and the 4-layer run's after them, quoted the
    4-layer run's val loss."""
    named = names_in(clause, recs)
    first = named + [r for r in _described(clause, recs) if r not in named] if recs else []
    if first:
        return first
    toks = set(tokens(clause))
    kinds = [k for k in dict.fromkeys(r.kind for r in recs) if k != "job" and KIND_NOUNS.get(k, set()) & toks]
    if counted := _counted(clause, kinds, recs):
        return counted
    pool = recent(recs, kinds or [k for k in dict.fromkeys(r.kind for r in recs) if k != "job"])
    if toks & SINGULAR_PRONOUNS and pool and pool[0].turn is not None:
        # "what vocab size did that end up with?": the one touched last, alone; a sweep's trial run
        # gives way to its sweep, touched in the same turn ("stop it there" after a sweep's status,
        # whose table named 20 trial runs, cancelled the newest trial's job)
        study = {pool[0].metrics.get(k) for k in STUDY_KEYS} - {None}
        whole = [r for r in pool if r.turn == pool[0].turn and r.id in study]
        return whole[:1] or pool[:1]
    if kinds:
        return pool
    return [r for r in recent(recs, sorted({r.kind for r in recs})) if r.kind != "job"] or list(recs)


def recent(recs: Sequence[Record], kinds: Sequence[str]) -> list[Record]:
    """Records of `kinds`: those this conversation touched (latest turn first), then the rest, newest first."""
    of_kind = [r for r in recs if r.kind in kinds]
    touched = sorted((r for r in of_kind if r.turn is not None), key=lambda r: -r.turn)
    return touched + [r for r in of_kind if r.turn is None]


def referents(parameters: dict[str, Any], recs: Sequence[Record]) -> list[Record]:
    """The records a tool's reference arguments (default "last") can point at: indexes for
    `search_documents`, runs for `sample_gpt`."""
    props = parameters.get("properties", {})
    kinds = {k for arg, p in props.items() if p.get("default") == "last" for k in ARG_KINDS.get(arg, ())}
    return [r for r in recs if r.kind in kinds]


def named_tool(
    prior: dict[str, float],
    choices: Sequence[str],
    tools: dict[str, dict],
    recs: Sequence[Record],
    clause: str,
    unfamiliar: Callable[[str], bool] | None = None,
    verbs: Callable[[str], Collection[str]] | None = None,
) -> str | None:
    """For a request that names a record by its name, or by a name of the user's own that no record has
    (`own_name`), and does not ask about the lab (the caller checks), the tool the bank's prior likes best among those whose reference arguments take that
    record: "use the ticket-lora adapter to answer: ..." and "gen w/ crossword-lora: ..." name an
    adapter, so a tool that runs one answers, not the model's memory. None when none takes it, or when
    the clause, the names aside, speaks of a record's settings or results (`asked_keys`: "what rank
    did ticket-lora use?" is answered from the records). With `unfamiliar` (`Bank.unfamiliar`) and
    `verbs` (a tool's `Bank.verbs`), a word no request of the bank used, right after a linking word or
    a verb that asks for a tool, names a record for the bank's favourite tool, when that tool takes one
    ("ask conchiglie: how long should I boil an egg?")."""
    named = names_in(clause, recs)
    rest = " ".join(w for w in clause.split() if not any(r.name.lower() in w.lower() for r in named))
    # a name of the user's own that no record has ("crossword-lora"): the tools that take its kind
    own = {k for k in NAME_PARTS if not named and own_name(clause, [k])}
    if own:
        rest = " ".join(w for w in clause.split() if "-" not in w and "_" not in w)

    def refs_of(tool: str) -> list[str]:
        return [
            a
            for a in tools[tool].get("parameters", {}).get("properties", {})
            if a in ARG_KINDS and a not in DATA_ARGS
        ]

    slotted = set()  # a name no record has, after a linking word or a tool's verb: the bank's favourite tool
    if not (named or own) and unfamiliar is not None and verbs is not None:
        fav = max((n for n in choices if n in tools), key=lambda n: prior.get(n, 0.0), default=None)
        links = NAME_LINKS | {v for n in choices if n in tools for v in verbs(n)}
        if fav is not None and refs_of(fav) and unseen_words(clause, unfamiliar, links):
            slotted = {fav}
    # what follows a colon is the text handed on ("ask conchiglie: how long should I boil an egg?")
    if not (named or own or slotted) or asked_keys(rest.partition(":")[0]):
        return None

    def takes(tool: str) -> bool:
        params = tools[tool].get("parameters", {})
        if own:
            return any(own & set(ARG_KINDS.get(a, ())) for a in params.get("properties", {}))
        if slotted:
            return tool in slotted
        return any(r in named for r in referents(params, recs))

    takers = [n for n in choices if n in tools and takes(n)]
    best = max(takers, key=lambda n: prior.get(n, 0.0), default=None)
    # a name no record has is weaker evidence than a record ("what is q-lora?" asks about a method):
    # the bank must side with the tool at least as much as with answering
    answering = max((prior.get(n, 0.0) for n in choices if n not in tools), default=0.0)
    return None if (own or slotted) and best is not None and prior.get(best, 0.0) < answering else best


def tool_over_answer(
    prior: dict[str, float],
    choices: Sequence[str],
    tools: dict[str, dict],
    recs: Sequence[Record],
    sure: float,
    clause: str = "",
    after_call: bool = False,
    fresh: bool = False,
) -> str | None:
    """The tool the bank's prior prefers to the model's choice to answer: its favourite, when that is a
    tool with prior >= `sure`, >= 0.5 when what it reads exists, and always when the request names a
    record it reads ("according to the books, ..." with an index called books). A favourite `answer`
    yields to the favourite tool when the request names or describes a record that tool reads, or points
    at one whose content only the tool reads (`CONTENT_KINDS`; `_picks_out`): "according to the guides, how do I limit numpy's BLAS
    threads?" leans to answer on its topic (0.37 against 0.29 for search_documents), yet asks about the
    index named guides; "according to my notes, ..." asks about the lab's index; a lower tool whose
    record's content the request points at ("anything in there on X?") also wins. With `after_call`
    (`about_last_call`: "what count did it print?" right after a program ran), "it" is that call, not
    the index touched before. `fresh`: nothing was looked up last turn (`_points_at_content`). None:
    the model answers."""
    pronouns = not after_call
    fav = max(choices, key=lambda n: prior.get(n, 0.0))
    if fav not in tools:
        ranked = sorted((n for n in choices if n in tools), key=lambda n: -prior.get(n, 0.0))
        refs = referents(tools[ranked[0]].get("parameters", {}), recs) if ranked else []
        if refs and _picks_out(clause, refs, recs, pronouns, fresh):
            return ranked[0]
        # a request that points at, names or describes content only a tool reads, whatever the prior's
        # order of tools ("anything in there on weight tying?" after indexing: ablate_gpt came before
        # search_documents; "in my spice trade history index, what were pepper prices like?": recall)
        return next((n for n in ranked[1:] if (r := [x for x in referents(tools[n].get("parameters", {}), recs)
                                                     if x.kind in CONTENT_KINDS])
                     and _picks_out(clause, r, recs, pronouns, fresh)), None)  # fmt: skip
    refs = referents(tools[fav].get("parameters", {}), recs)
    return (
        fav
        if _picks_out(clause, refs, recs, pronouns, fresh) or prior[fav] >= (0.5 if refs else sure)
        else None
    )


RESULT_KINDS = ("run", "adapter", "sweep", "research", "ablation")  # records that hold settings and results


def only_pointer(value: Any, clause: str) -> bool:
    """True when a text argument's value is the clause's own words pointing back ("the same thing",
    "that question"): every word of it is the clause's, and one is a pointer (`PRONOUNS`)."""
    if not isinstance(value, str) or not value.strip():
        return False
    words = set(tokens(value))
    return bool(words & PRONOUNS) and words <= set(tokens(clause))


def turn_of(messages: Sequence[BaseMessage]) -> int:
    """The latest user turn's index (0-based), as `Record.turn` counts turns."""
    return sum(isinstance(m, HumanMessage) for m in messages) - 1


def about_last_call(clause: str, recs: Sequence[Record], last_turn: int) -> bool:
    """True when the clause points with a pronoun ("what count did it print?") and the last turn
    touched no record a look-up reads (`CONTENT_KINDS`): "it" is that turn's call, whose result is in
    the thread. After an index was built, "look up the vocabulary size in it" means the index."""
    return bool(set(tokens(clause)) & SINGULAR_PRONOUNS) and not any(
        r.kind in CONTENT_KINDS and r.turn == last_turn for r in recs
    )


def unheld_lookup(
    prior: dict[str, float], tools: dict[str, dict], recs: Sequence[Record], clause: str, floor: float,
    after_lookup: bool = False,
) -> str | None:  # fmt: skip
    """For a question about a measured result (`asked_keys` among `RESULT_KEYS`: "what val loss did the
    full baseline model reach?") while the lab holds no run, adapter or study that could answer it but
    does hold an index: the tool that reads the index (its prior at least `floor`). Such a number can
    only come from the user's documents; the 1.5B answered "2.0000000000000004" from nowhere, right
    after the seeds were indexed. A question about a setting ("how much dropout should I use?") is
    advice the model may give. None when a record could hold the answer, no index exists, or the last turn looked
    things up (`after_lookup`: its passages are in the thread, and the follow-up is answered from them)."""
    if after_lookup or not asked_keys(clause) & set(RESULT_KEYS) or any(r.kind in RESULT_KINDS for r in recs):
        return None
    readers = [n for n, t in tools.items()
               if any(r.kind in CONTENT_KINDS for r in referents(t.get("parameters", {}), recs))]  # fmt: skip
    best = max(readers, key=lambda n: prior.get(n, 0.0), default=None)
    return best if best is not None and prior.get(best, 0.0) >= floor else None


def asks_about_record(clause: str, recs: Sequence[Record]) -> bool:
    """True when the clause names a record and says a word of one of its settings' or results' keys
    ("how many merge rules sonnet320 holds?": sonnet320's num_merges): a question the records answer."""
    words = {stem(t) for t in tokens(clause) if len(t) > 2}
    for r in names_in(clause, recs):
        keys = {stem(w) for k in (*r.config, *r.metrics) for w in k.split("_") if len(w) > 2 and w != "num"}
        if words & keys:
            return True
    return False


def _picks_out(
    clause: str, refs: Sequence[Record], recs: Sequence[Record], pronouns: bool = True, fresh: bool = False
) -> bool:
    """True when the clause names one of `refs`, describes one by its kind's noun and its config ("the
    adapter tuned on the sql pairs", "the tokeniser I built from my essays": `_described`), or points
    at one whose content only a tool reads (`_points_at_content`)."""
    if names_in(clause, refs) or _points_at_content(clause, refs, recs, pronouns, fresh):
        return True
    described = _described(clause, refs) if refs else []
    return bool(described) and bool(KIND_NOUNS.get(described[0].kind, set()) & set(tokens(clause)))


def _points_at_content(
    clause: str,
    refs: Sequence[Record],
    recs: Sequence[Record] = (),
    pronouns: bool = True,
    fresh: bool = False,
) -> bool:
    """True when the clause points at records of a `CONTENT_KINDS` kind among `refs` ("my notes", "the
    guide" with an index in the lab), or, with `pronouns`, says "they"/"it" when the record the
    conversation touched last (of all `recs`) is one ("what do they say about the KV cache?" after
    indexing the seeds); with `fresh` (nothing was looked up in it yet, so no passage is in the thread)
    "its" too ("which rank does its LoRA project pick?" right after indexing a tutorial)."""
    toks = tokens(clause)
    for kind in {r.kind for r in refs} & set(CONTENT_KINDS):
        nouns, pointers = KIND_NOUNS[kind], CONTENT_KINDS[kind]
        if _pointed(toks, nouns, pointers):
            return True
    touched = [r for r in recs if r.turn is not None]
    last = max(touched, key=lambda r: r.turn) if touched else None
    there = any(t == "there" and b in LOCATIVES for b, t in zip(toks, toks[1:], strict=False))
    return bool(
        last
        and last in refs
        and last.kind in CONTENT_KINDS
        and ((CONTENT_PRONOUNS | ({"its"} if fresh else set())) & set(toks) and pronouns or there)
    )


def memories_of(messages: Sequence[BaseMessage]) -> list[str]:
    """The long-term memories that ride on the system message (newest first)."""
    if not messages or not isinstance(messages[0], SystemMessage):
        return []
    return [str(f) for f in (messages[0].additional_kwargs or {}).get("memories") or []]


def remembered(
    prior: dict[str, float], tools: dict[str, dict], memories: Sequence[str], clause: str, floor: float,
    common: set[str], used: Iterable[str] = (), recs: Sequence[Record] = (),
) -> str | None:  # fmt: skip
    """`recall` for a question the model would answer itself when memories are kept and the bank's prior
    for recall is a majority (what the tool reads exists, as in `tool_over_answer`), or at least `floor`
    when a word of the question that is not `common` (the bank's everyday words) is a word of a kept
    memory. "do you remember my supervisor's name?" with "The user's supervisor is Dr. Okafor." kept:
    the 1.5B answered "Dr. Smith". A word that names an argument of the call just made (`used`) asks
    about that call, which the thread holds ("which seed did you just use?" after a sample at the kept
    seed). Without a kept memory, `recall` when it leads the prior and the question names or describes
    no record (`recs`): the tool then says nothing is kept, where the 1.5B answered "do u remember what
    i named the tarot tokenizer?" with a name of its own. None otherwise."""
    if "recall" not in tools or prior.get("recall", 0.0) < floor:
        return None
    if not memories:
        leads = prior["recall"] >= max(prior.values())
        return (
            "recall"
            if leads and not (recs and (names_in(clause, recs) or _described(clause, recs)))
            else None
        )
    if prior["recall"] >= 0.5:
        return "recall"
    asked = {stem(t) for t in tokens(clause) if len(t) > 2 and t not in common and not t[0].isdigit()}
    if asked & {stem(w) for arg in used for w in arg.split("_") if len(w) > 2}:
        return None
    kept = {stem(t) for fact in memories for t in tokens(fact)}
    return "recall" if asked & kept else None


OBJECT_PRONOUNS = {"it", "that", "this", "them"}


def _record_kinds(tool: dict) -> set[str]:
    """The kinds of record a tool must act on: those its required arguments or its arguments that
    default to the newest ('last') take, its data aside, when no built-in stands in for a record
    (train_gpt's tokenizer, 'char' by default, and finetune_lora's base, 'smollm2' or a run, are no
    record it must act on)."""
    params = tool.get("parameters", {})
    props, required = params.get("properties", {}), set(params.get("required", ()))
    acting = [a for a, p in props.items() if a not in DATA_ARGS and (a in required or p.get("default") == "last")
              and not set(builtins(p.get("description", "") or "")) - REFERENCE_VALUES]  # fmt: skip
    return {k for a in acting for k in ARG_KINDS.get(a, ())}


def referent_tool(
    action: str, prior: dict[str, float], tools: dict[str, dict], recs: Sequence[Record], clause: str,
    verbs: Collection[str], rank: Callable[[str], dict[str, float]] | None = None,
) -> str | None:  # fmt: skip
    """Another tool, for the record a pronoun or a noun points at, when `action` acts on a kind of record
    the lab has none of: "ok, stop it for now" after a background run chose stop_sweep (the bank's "stop
    it" requests stop sweeps) with no sweep to stop; so did "halt the run that's learning from ...". Of
    the tools that take the record meant (`about`) or a job, the one the bank's prior likes best. Only
    for a pronoun, or the noun of a kind the lab holds, that is the object of one of `verbs`
    (`Bank.verbs`: "stop it"; "merge gpt-1-lora-1 into its base" names its adapter). With `rank` (the
    bank's prior of a text), the prior is that of the verb and its object alone ("halt the run"): what
    is done to the record, not how the clause describes it (the description made sample_gpt the
    favourite). None when `action` takes no record, or the lab has one of its kinds."""
    kinds = _record_kinds(tools.get(action, {}))
    if not kinds or any(r.kind in kinds for r in recs):
        return None
    # the verb's object (past determiners): a pronoun, or the noun of a kind of record the lab holds
    # ("halt the run that's learning from the bazaar price list" chose stop_sweep too)
    objects = OBJECT_PRONOUNS | {n for r in recs if r.kind != "job" for n in KIND_NOUNS.get(r.kind, ())}
    toks = [w.strip(PUNCTUATION).lower() for w in clause.split()]  # "merge gpt-1-lora-1": one word, no noun
    phrase = None
    for i, t in enumerate(toks):
        if t not in verbs:
            continue
        k = i + 1  # "stop that", or the first word past the determiners: "halt the run"
        while k < len(toks) and toks[k] in DETERMINERS and toks[k] not in objects:
            k += 1
        if k < len(toks) and toks[k] in objects:
            phrase = " ".join(toks[i : k + 1])
            break
    if phrase is None:
        return None
    target = next(iter(about(clause, recs)), None)
    if target is None:
        return None
    if rank is not None:
        prior = rank(phrase)
    takers = [n for n, t in tools.items() if n != action and _record_kinds(t) & {target.kind, "job"}]
    return max(takers, key=lambda n: prior.get(n, 0.0), default=None)


def named_record_tool(
    action: str, prior: dict[str, float], tools: dict[str, dict], recs: Sequence[Record], clause: str,
    new_name: str | None,
) -> str | None:  # fmt: skip
    """For a call that makes a new artifact (it takes a `name`) while the clause names one existing
    record of a kind it takes none of and gives no new name (`new_name`, `extract.stated_name`): the
    tool the bank's prior likes better than `action` among those that must act on that record. "carry
    on with lute but take it to 400 steps" chose train_gpt, whose new run could not take lute's name;
    resume_gpt goes on with lute. "train a gpt like lute" keeps train_gpt, which the prior likes best. A
    record described by its kind's noun counts as named ("pull 200 tokens out of the GPT whose training
    data was the chess games" chose train_gpt, sample_gpt's prior 0.44 against 0.05)."""
    tool = tools.get(action, {})
    props = tool.get("parameters", {}).get("properties", {})
    if "name" not in props or new_name:
        return None
    takes = {k for a in props for k in ARG_KINDS.get(a, ())}
    named = [r for r in names_in(clause, recs) if r.kind not in takes and r.kind != "job"]
    if (
        not named and recs
    ):  # described by its kind's noun and its config: "the GPT whose training data was ..."
        toks = set(tokens(clause))
        named = [r for r in _described(clause, recs, numbers=False)
                 if r.kind not in takes and r.kind != "job" and KIND_NOUNS.get(r.kind, set()) & toks]  # fmt: skip
    if len(named) != 1:
        return None
    takers = [n for n, t in tools.items() if n != action and named[0].kind in _record_kinds(t)]
    best = max(takers, key=lambda n: prior.get(n, 0.0), default=None)
    return best if best is not None and prior.get(best, 0.0) > prior.get(action, 0.0) else None


def live_tool(
    prior: dict[str, float], tools: dict[str, dict], recs: Sequence[Record], clause: str, floor: float
) -> str | None:
    """For a question about the progress of something that runs as a job ("how's it going?" after a
    background run or sweep), the tool that reads it now: of the tools that take its kind or its job,
    the one the bank's prior likes best, when that prior is at least `floor`. Once its job has ended,
    never for a question about its settings or results (`asked_keys`): "what rank did the adapter
    use?" is in its record, and had run merge_lora; "actually, kill it" still is cancel_job, which
    says the job has ended. The conversation's own
    text says "started" (the 1.5B answered "it is currently training" for a run that had finished).
    None when the question points at nothing (a pronoun, a name or the kind's noun)."""
    target = next(iter(about(clause, recs)), None)
    if target is None:
        return None
    jobs = [r for r in recs if r.kind == "job" and target.id in (r.id, r.config.get("artifact"))]
    if not jobs and target.metrics.get("status") not in ACTIVE:
        return None
    kinds = {target.kind, "job"}
    live = target.metrics.get("status") in ACTIVE or any(j.metrics.get("status") in ACTIVE for j in jobs)
    # a setting a running search varies has its best value so far as a live result: "which width is ahead?"
    searched = set(target.config.get("space") or ()) if live else set()
    said = (
        bare_pronoun(clause)
        or names_in(clause, [target])
        or set(tokens(clause)) & set().union(*(KIND_NOUNS.get(k, set()) for k in kinds))
        or asked_keys(clause) & searched
    )
    if not live and asked_keys(clause):
        return None
    takers = [n for n, t in tools.items()
              if any(k in kinds for a in t.get("parameters", {}).get("properties", {}) for k in ARG_KINDS.get(a, ()))]  # fmt: skip
    best = max(takers, key=lambda n: prior.get(n, 0.0), default=None)
    return best if said and best is not None and prior.get(best, 0.0) >= floor else None


# Kinds of record made by a background job that have tools of their own, better than the job's: a
# sweep's status has its trials and best so far where job_status has a step count, and stop_sweep keeps
# the study for resume_sweep.
JOB_TOOLS_OF_KIND = {
    "sweep": {"job_status": "sweep_status", "cancel_job": "stop_sweep"},
    "research": {"job_status": "sweep_status", "cancel_job": "stop_sweep"},
}


def own_tool(action: str, tools: dict[str, dict], recs: Sequence[Record], clause: str) -> str:
    """`action`, or the tool of the record's own kind when `action` is a job's tool and the record the
    clause is about (`about`) is not a job but has its own (`JOB_TOOLS_OF_KIND`): "how is it doing?"
    after a sweep in the background is sweep_status, "stop job-4" stays cancel_job."""
    target = next(iter(about(clause, recs)), None)
    swap = JOB_TOOLS_OF_KIND.get(target.kind, {}).get(action) if target is not None else None
    return swap if swap in tools else action


def asks_last_touched(clause: str, recs: Sequence[Record]) -> bool:
    """True when a question asks for a setting or result (`asked_keys`) that a record the conversation
    touched last holds: "so how wide is each head?" right after a training asks that run (its n_embd
    and n_head), though it names no run. Never after a look-up (an index touched last): "which rank
    does their example pick?" then asks the passages."""
    touched = [r for r in recs if r.turn is not None and r.kind != "job"]
    if not touched:
        return False
    last = max(r.turn for r in touched if r.turn is not None)
    newest = [r for r in touched if r.turn == last]
    if any(r.kind == "index" for r in newest):
        return False
    return bool(asked_keys(clause) & {k for r in newest for k in (*r.config, *r.metrics)})


def refers_to_kind(clause: str, arg: str, one: bool = False) -> bool:
    """True when the clause points back at a record for `arg`: a pronoun next to the kind's noun ("that
    tokenizer", "the same text"), or "it"/"that" on its own. With `one` (the tool's main reference, whose
    default is the newest), "one" stands for the kind's noun ("sample from the first one"), and so does
    nothing after an ordinal that ends its phrase ("and with the second")."""
    toks = tokens(clause)
    nouns = set().union(
        *(KIND_NOUNS.get(k, set()) for k in ARG_KINDS.get(arg, ())), KIND_NOUNS.get(arg, set())
    ) | ({"one"} if one else set())
    for i, t in enumerate(toks):
        if t in nouns and (PRONOUNS | set(ORDINALS)) & {*toks[max(0, i - 3) : i], *toks[i + 1 : i + 3]}:
            return True
    ends = set(phrase_ends(clause)) | {len(toks)}
    return one and any(
        t in ORDINALS and i and toks[i - 1] == "the" and i + 1 in ends for i, t in enumerate(toks)
    )


def dangling(clause: str, arg: str, recs: Sequence[Record]) -> bool:
    """True when the clause points at a record of the argument's kind that the lab does not have:
    "train something on my data", "encode it with that tokenizer", "train a tokenizer on it" in an empty
    lab. The tool's default
    would stand in for what the user means, so the agent asks instead."""
    kinds = ARG_KINDS.get(arg)
    if not kinds or any(r.kind in kinds for r in recs):
        return False
    nouns = set().union(*(KIND_NOUNS.get(k, set()) for k in kinds), KIND_NOUNS.get(arg, set()))
    toks = tokens(clause)
    if arg in DATA_ARGS and _owned_source(toks):  # "train a tokeniser on my diary entries"
        return True
    if arg in DATA_ARGS and not recs and _pronoun_source(toks):  # "train a tokenizer on it", in an empty lab
        return True
    return _pointed(toks, nouns, POINTING)


def ambiguous(
    clause: str, arg: str, recs: Sequence[Record], spent: Mapping[float, str] | None = None
) -> bool:
    """True when the clause describes, without naming one, records of the argument's kind that
    several fit equally well but not all do (`_described`): "merge my qwen adapter" beside two
    adapters on qwen and one on smollm2, "the run I stopped" beside two cancelled runs; or says "one of
    them" beside two or more the conversation spoke of. The tool takes one record, and the newest of
    those would be a guess, so the agent asks which. `spent`: as for `resolve`."""
    kinds = ARG_KINDS.get(arg)
    pool = [r for r in recs if r.kind in (kinds or ())]
    toks = tokens(clause)
    # "resume one of them to 300 steps": one, not said which, of the records the conversation spoke of
    unsaid = any(t == "one" and toks[i + 1 : i + 3] in OF_THEM for i, t in enumerate(toks))
    spoken = [r for r in pool if r.turn is not None]
    if unsaid and len(spoken) >= 2 and not names_in(clause, pool) and not _described(clause, pool):
        return True
    if len(pool) < 3 or names_in(clause, pool) or bare_pronoun(clause):
        return False
    fit = _described(clause, pool, several=True, spent=spent)
    return 2 <= len(fit) < len(pool)


DATA_PREPOSITIONS = {"on", "from", "over"}  # what introduces the data a call learns from
OWNERS = {"my", "our"}


def _owned_source(toks: Sequence[str]) -> bool:
    """True when the data is the user's own, by any name: "on my diary entries", "from our logs". A
    path or a built-in dataset would be written out, so the lab has nothing to stand for it. A record
    of what is made, named by its noun, is no data: "fit a model on my meteorite tokenizer"."""
    made = set().union(*(KIND_NOUNS[k] for k in MADE_KINDS))
    return any(t in OWNERS and i and toks[i - 1] in DATA_PREPOSITIONS and not made & set(toks[i + 1 : i + 4])
               for i, t in enumerate(toks))  # fmt: skip


MADE_KINDS = ("run", "tokenizer", "adapter", "index")  # what a call makes from data


def _pronoun_source(toks: Sequence[str]) -> bool:
    """True when the data of the thing made is a pronoun: a noun of what is made, a preposition of
    data right after it or one word on, then the pronoun ("train a tokenizer on it", "a gpt from
    that"). With no record at all, it points at nothing the lab or the conversation holds; "don't wait
    on it" and "on this laptop" are no data."""
    made = set().union(*(KIND_NOUNS[k] for k in MADE_KINDS))
    return any(t in SINGULAR_PRONOUNS | CONTENT_PRONOUNS and i >= 2 and toks[i - 1] in DATA_PREPOSITIONS
               and made & set(toks[max(0, i - 3) : i - 1])
               and (i + 1 == len(toks) or toks[i + 1] not in KIND_NOUNS["dataset"] | KIND_NOUNS["file"])
               for i, t in enumerate(toks))  # fmt: skip


def _glued(clause: str) -> set[str]:
    """Words glued to the next by a hyphen ("two" and "2" of "the two-layer model", "a 2-layer run")."""
    return {w.split("-", 1)[0] for w in clause.lower().split() if "-" in w.strip("-")}


# Nouns for a call's settings as a whole: "with those dimensions", "the same settings"
SETTINGS_NOUNS = {"settings", "setting", "config", "configuration", "dimensions", "sizes", "size", "shape",
                  "hyperparameters", "hyperparams", "architecture", "setup"}  # fmt: skip


def points_at_settings(clause: str) -> bool:
    """True when the clause points back at a call's settings ("now a regular one with those dimensions",
    "with the same settings"): the request repeats that call's settings, whatever the example bank says."""
    return _pointed(tokens(clause), SETTINGS_NOUNS, POINTING | {"these", "this", "its"})


def _pointed(toks: Sequence[str], nouns: set[str], pointers: set[str]) -> bool:
    """True when a noun of `nouns` follows a word of `pointers` ("my notes", "that tokenizer")."""
    return any(t in nouns and i and toks[i - 1] in pointers for i, t in enumerate(toks))


def bare_pronoun(clause: str) -> bool:
    toks = tokens(clause)
    return any(t in ("it", "its", "that", "them") for t in toks)


def takes_list(prop: dict[str, Any]) -> bool:
    """True for a property that holds a list (`show_curves`' runs)."""
    return prop.get("type") == "array" or any(p.get("type") == "array" for p in prop.get("anyOf", []))


def _stated(value: Any, clause: str, description: str) -> bool:
    """A reference value that stands on its own: "last", a path, one the request writes out whole, or a
    built-in the argument's description names ('cl100k_base')."""
    if not isinstance(value, str):
        return value is not None
    v = value.strip().lower()
    return (v in ("last", "latest", "char") or "/" in v or "." in v or v in _whole_words(clause)
            or f"'{v}'" in description.lower())  # fmt: skip


def builtins(description: str) -> list[str]:
    """The built-in values an argument's description names in quotes ("'shakespeare'", "'demo'"); an
    example of a registry name ("'run-3'", "'gpt-3'": a word, a dash, a counter) is none."""
    parts = description.split("'")[1::2]
    return [p for p in parts if p and " " not in p and not p.startswith(("<", "-"))
            and not p.rpartition("-")[2].isdigit()]  # fmt: skip


def path_like(value: str) -> bool:
    """A file or folder the user wrote: a name with an extension, or with a part after a '/'."""
    head, _, tail = value.rpartition("/")
    stem, dot, ext = tail.rpartition(".")
    return bool(tail and (head or (dot and stem and ext.isalpha() and len(ext) <= 5)))


def _builtin(
    value: Any, clause: str, description: str, pool: Sequence[Record], nouns: Iterable[str] = ()
) -> str | None:
    """The built-in value (named in the argument's description) that the model's `value` stands for:
    the one the request writes out, by name, by its gloss ("GPT-4o's tokenizer" -> 'o200k_base') or by
    a word that begins with its name before a noun of the argument's kind (`nouns`: "the character
    tokenizer" -> 'char') or by all the words of its name ("the Qwen coder base"), even
    when the model left the argument out, else the one whose words `value` shares ("qwen-0.5b" ->
    'qwen2.5-coder-0.5b', "smollm" -> 'smollm2-135m'). None when `value` is itself a built-in (unless
    the request glosses another one), a
    record the request does not write (a repeated call's "bpe350-chat" gives way to "and with gpt-4's
    tokenizer?"), a path the request writes, or no built-in fits one way."""
    # "last" is a reference, no built-in: "restart my crashed run from its last checkpoint" is the
    # run the clause describes, not the newest one
    names = [n for n in builtins(description) if n not in REFERENCE_VALUES]
    if not names:
        return None
    if value in names:
        # a built-in carried over or guessed gives way to another that the request glosses ("and
        # GPT-4's?" after GPT-4o's: cl100k_base)
        glossed = _glossed(clause, description, names)
        return glossed[0] if len(glossed) == 1 and glossed[0] != value else None
    text = isinstance(value, str) and value.strip() and value not in REFERENCE_VALUES
    if text and path_like(value) and value.lower() in clause.lower():
        return None
    words = set(tokens(clause))
    toks, nouns = tokens(clause), set(nouns)
    written = (
        [n for n in names if set(tokens(n)) <= words and len(n) > 3]
        or _glossed(clause, description, names)
        or [
            n
            for n in names
            if len(n) > 3
            and any(t.startswith(n) and b in nouns for t, b in zip(toks, toks[1:], strict=False))
        ]
        or [
            n for n in names if len(spelled := _name_words(n)) >= 2 and spelled <= words
        ]  # "the Qwen coder base"
    )
    if len(written) == 1:
        return written[0]
    if text and any(value in (r.name, r.id, r.ref) for r in pool):
        return None
    if not text or path_like(value):
        return None
    own = set(tokens(value))
    alpha = {t for t in own if not t[0].isdigit() and len(t) > 2}
    key = alpha or {t for t in own if t[0].isdigit()}  # "o200k": its number is all it has
    fits = [n for n in names if key & set(tokens(n))]
    return fits[0] if len(fits) == 1 else None


def _name_words(name: str) -> set[str]:
    """The words of a built-in's name, without its numbers: 'qwen2.5-coder-0.5b' -> {"qwen", "coder"}."""
    return {t for t in tokens(name) if t.isalpha() and len(t) > 2}


def _glossed(clause: str, description: str, names: Sequence[str]) -> list[str]:
    """The built-ins whose gloss, the parenthesis after the quoted value ("'o200k_base' (GPT-4o)"), the
    clause writes word for word; of glosses inside one another, the longest ("GPT-4o" over "GPT-4")."""
    said = f" {' '.join(tokens(clause))} "
    found = {}
    for n in names:
        _, sep, rest = description.partition(f"'{n}' (")
        gloss = " ".join(tokens(rest.split(")")[0])) if sep else ""
        if gloss and f" {gloss} " in said:
            found[n] = gloss
    return [n for n, g in found.items() if not any(g != h and f" {g} " in f" {h} " for h in found.values())]


def _partial_name(value: Any, pool: Sequence[Record]) -> Record | None:
    """The one record whose name holds every word of `value` ("shakespeare" -> bpe512-shakespeare)."""
    if not isinstance(value, str) or any(value in (r.name, r.id) for r in pool):
        return None
    own = {t for t in tokens(value) if len(t) > 2}
    fits = [r for r in pool if own and own <= set(tokens(r.name))]
    return fits[0] if len(fits) == 1 else None


def resolve(
    arg: str, value: Any, clause: str, recs: Sequence[Record], default: Any, description: str = "",
    spent: Mapping[float, str] | None = None,
) -> Any:  # fmt: skip
    """The record name a reference argument means, or `value` unchanged.

    Args:
        arg: the argument ("tokenizer", "run", "dataset", ...); only those in `ARG_KINDS` resolve.
        value: what the model wrote (None when nothing).
        clause: the request's words for this call.
        recs: the records (`records_of`).
        default: the argument's schema default ("last" for a reference that defaults to the newest).
        description: the argument's schema description (built-in values it names are kept).
        spent: {value: argument} for the numbers the request gives the tool's other arguments
            (`_described`).

    Returns:
        A record's name (a file's path), `value`, or None when `value` names nothing that exists.
    """
    kinds = ARG_KINDS.get(arg)
    if not kinds:
        return value
    pool = [r for r in recs if r.kind in kinds]
    named = names_in(clause, pool)
    if isinstance(value, list):  # a list the model wrote: its names are checked by the tool, unless
        # the clause names records and the list holds another ("plot maple's loss curve" wrote the
        # name of the adapter merged from it, "maple-lora-2-merged")
        refs = {x for r in named for x in (r.name, r.id, r.ref)}
        stray = [v for v in value if isinstance(v, str) and v not in refs]
        if named:
            return [r.ref for r in named] if stray else value
        # "every run that used the sudoku solutions": the records the clause describes, several alike
        fit = in_made_order(_described(clause, pool, several=True, spent=spent)) if len(pool) > 2 else []
        return [r.ref for r in fit] if 2 <= len(fit) < len(pool) else value  # in the order they were made
    if len(named) == 1:
        return named[0].ref
    if (
        not named
        and arg in DATA_ARGS
        and not (value and _stated(value, clause, description))  # "measure it on data/reviews.txt"
        and refers_to_kind(clause, arg)
        and (src := _source(recs, pool, clause))
    ):
        return src
    nouns = {w for k in kinds for w in KIND_NOUNS.get(k, ())}
    if not named and (builtin := _builtin(value, clause, description, pool, nouns)):
        return builtin
    if not named and (
        written := written_id(clause, kinds) or written_name(clause, kinds) or own_name(clause, kinds)
    ):
        return written
    if not pool:
        return value if _stated(value, clause, description) else None
    if not named and (partial := _partial_name(value, pool)):
        return partial.ref
    if isinstance(value, str) and any(value == r.name or value == r.id for r in pool) and named:
        return value
    described = _described(clause, pool, spent=spent) if len(pool) > 1 else []
    if len(described) == 1:
        return described[0].ref
    if len(pool) > 1 and (made := _made_from_described(clause, pool, recs, spent)):
        return made.ref
    if (
        isinstance(value, str)
        and not any(value in (r.name, r.id) for r in pool)
        and not _stated(value, clause, description)
    ):
        value = None  # a name no record has and the request does not spell out ("the book" -> "books")
    if refers_to_kind(clause, arg, one=default in ("last", "latest")):
        ordered = recent(pool, kinds)
        nth = next((ORDINALS[t] for t in tokens(clause) if t in ORDINALS), None)
        if nth is not None:  # among those the conversation touched, in the order they were made
            touched = [r for r in ordered if r.turn is not None] or ordered
            oldest_first = in_made_order(touched)
            return oldest_first[min(nth, len(oldest_first) - 1)].ref
        return ordered[0].ref
    return value


def _made_from_described(
    clause: str, pool: Sequence[Record], recs: Sequence[Record], spent: Mapping[float, str] | None = None
) -> Record | None:
    """The one record of `pool` made from the record of another kind that the clause names by its
    kind's noun and describes ("the adapter I built on top of the 256-wide run": the adapter whose
    base is the run with n_embd 256), else None."""
    toks = set(tokens(clause))
    kinds = {r.kind for r in pool}
    sources = [r for r in recs if r.kind not in kinds and KIND_NOUNS.get(r.kind, set()) & toks
               and any(p.config.get(k) in (r.name, r.id) for p in pool for k in DESCRIBING_SOURCES)]  # fmt: skip
    source = _described(clause, sources, spent=spent) if sources else []
    if len(source) != 1:
        return None
    made = [
        p for p in pool if any(p.config.get(k) in (source[0].name, source[0].id) for k in DESCRIBING_SOURCES)
    ]
    return made[0] if len(made) == 1 else None


def _made(r: Record) -> int:
    """When the registry made the record: the counter of its id ("tokenizer-12" -> 12)."""
    tail = r.id.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0


def in_made_order(recs: Iterable[Record]) -> list[Record]:
    """The records in the order the registry made them, oldest first: how a list of them is passed on."""
    return sorted(recs, key=_made)


def resolve_pronoun(
    args: dict[str, Any], clause: str, recs: Sequence[Record], props: dict[str, Any]
) -> dict[str, Any]:
    """ "with it", "sample from that": a bare pronoun means the record of a kind the tool takes that this
    conversation touched last ("stop it" after a background run: the job, not the run it trains), put
    into the tool's reference argument of that kind, unless the request already set it.

    Args:
        args: the arguments so far; clause: the request's words; recs: the records (`records_of`);
        props: the tool's JSON-schema properties.
    """
    if not bare_pronoun(clause):
        return args
    takes = {k for arg in props for k in ARG_KINDS.get(arg, ())}
    touched = sorted((r for r in recs if r.turn is not None and r.kind in takes), key=lambda r: -r.turn)
    if not touched:
        return args
    last = touched[0]
    for arg in props:
        if last.kind in ARG_KINDS.get(arg, ()):
            current = args.get(arg)
            default = props[arg].get("default")
            if current in (None, "", default, []) or str(current).lower() in ("last", "latest"):
                return {**args, arg: [last.ref] if takes_list(props[arg]) else last.ref}
            return args
    return args


def plural(clause: str, arg: str, recs: Sequence[Record]) -> list[Record]:
    """The records "both runs", "my last two runs", "each of them" mean for `arg`: the newest (or last
    touched), in the order the registry made them; [] when the clause does not speak of several."""
    kinds = ARG_KINDS.get(arg, ())
    return _counted(clause, kinds, recs) or _each_described(clause, [r for r in recs if r.kind in kinds])


def _each_described(clause: str, pool: Sequence[Record]) -> list[Record]:
    """The records that two or more settings glued to their numbers pick out one each ("the 1-layer and
    the 3-layer runs", "the 64-wide and the 32-wide models"), in the clause's order: the word after the
    hyphen names the setting (`asked_keys`), and exactly one record of `pool` has that value for it.
    [] unless at least two records are picked out."""
    out: list[Record] = []
    for word in clause.lower().split():
        num, _, setting = word.strip(".,;:!?()").partition("-")
        value = as_number(num) if num[:1].isdigit() else NUMBER_WORDS.get(num)
        keys = asked_keys(setting) & set(DESCRIBING_KEYS) if value is not None and setting else set()
        fits = [r for r in pool if any(r.config.get(k) == value for k in keys)]
        if len(fits) == 1 and fits[0] not in out:
            out.append(fits[0])
    return out if len(out) >= 2 else []


OF_THEM = (["of", "them"], ["of", "those"], ["of", "these"])  # "the two of them": a count of records


def _counted(clause: str, kinds: Sequence[str], recs: Sequence[Record]) -> list[Record]:
    """The `n` records of `kinds` that "both", or a count before one of their nouns ("the two runs")
    or before "of them", means: of those the clause describes best when at least `n` fit ("both runs on shakespeare"), else
    of all, the newest or last touched, in the order they were made; [] when the clause counts none."""
    if not kinds:
        return []
    toks = tokens(clause)
    nouns = set().union(*(KIND_NOUNS.get(k, set()) for k in kinds))
    # "the two-layer model", "the 2-layer run": a number glued to a word by a hyphen describes, counts nothing
    glued = _glued(clause)
    n = 0
    for i, t in enumerate(toks):
        # "the two runs", "both", "the two of them" (the ones the conversation speaks of)
        after = set(toks[i + 1 : i + 4])
        if (
            t in PLURAL
            and t not in glued
            and (t == "both" or nouns & after or toks[i + 1 : i + 3] in OF_THEM)
        ):
            n = PLURAL[t]
            break
    pool = recent(recs, kinds)
    fit = _described(clause, pool, several=True) if n >= 2 and pool else []
    pool = [r for r in pool if r in fit] if len(fit) >= n else pool  # "both runs on shakespeare"
    return in_made_order(pool[:n]) if n >= 2 and len(pool) >= n else []  # in the order they were made


# What each number of a record means in a question's words, besides the parts of its own name ("val_loss":
# "val", "loss"): the words by which a question asks about it ("which run is the biggest?" asks about
# params). Words are matched after `stem`.
KEY_GLOSSES = {
    "val_loss": "validation best better worse worst beat",
    "best_val_loss": "validation",
    "train_loss": "training",
    "params": "parameters size big small large",
    "trainable_params": "trainable",
    "tokens_per_sec": "speed fast slow throughput",
    "seconds": "time long quick took",
    "n_runs": "models runs variants trained",
    "n_layer": "layers deep shallow",
    "n_head": "heads",
    "n_embd": "embedding width wide narrow",
    "max_iters": "steps iterations",
    "lr": "learning rate",
    "vocab_size": "vocabulary vocab",
    "r": "rank",
    "head_size": "dimension dim",
    "total_steps": "altogether overall",
}
# the adjectives of those glosses a question also says as a comparative or a superlative ("shallowest")
GRADABLE = {"big", "small", "large", "fast", "slow", "long", "quick", "deep", "shallow", "wide", "narrow",
            "low", "high", "few", "great"}  # fmt: skip


def degrees(adjective: str) -> set[str]:
    """The adjective and its comparative and superlative by the regular English endings ("wide" ->
    wider, widest; "big" -> bigger, biggest, a short word ending consonant-vowel-consonant doubles its
    last letter; "shallow" -> shallower, shallowest)."""
    a = adjective
    if a.endswith("e"):
        return {a, a + "r", a + "st"}
    if (len(a) <= 4 and len(a) >= 3 and a[-1] not in "aeiouwxy" and a[-2] in "aeiou"
            and a[-3] not in "aeiou"):  # fmt: skip
        a += a[-1]
    return {adjective, a + "er", a + "est"}


def gloss_words(key: str) -> set[str]:
    """The words by which a question asks about `key` (`KEY_GLOSSES`), gradable ones in every degree."""
    return {d for w in KEY_GLOSSES.get(key, "").split() for d in (degrees(w) if w in GRADABLE else {w})}


# what "bigger" / "smaller" measures for each kind of record ("the bigger of my two tokenizers")
SIZE_KEYS = {"run": "params", "tokenizer": "vocab_size", "adapter": "r"}
SIZE_WORDS = gloss_words("params") - {"parameters"}


def graded_keys(clause: str) -> set[str]:
    """The numbers a comparative or superlative of their own adjective names ("my two deepest models" ->
    n_layer, "the wider one" -> n_embd): the order such a word asks for, whatever else the clause speaks
    of ("the loss curves of ..."). Empty for a degree of no key's adjective ("lowest", "better")."""
    words = set(tokens(clause))
    return {key for key, gloss in KEY_GLOSSES.items()
            if words & {d for w in gloss.split() if w in GRADABLE for d in degrees(w) - {w}}}  # fmt: skip


def asked_keys(clause: str) -> set[str]:
    """The numbers of a record a question speaks of: a part of the key's name ("val loss") or a gloss word
    (`KEY_GLOSSES`: "bigger" -> params) among its words."""
    return set(asked_scores(clause))


def asked_scores(clause: str) -> dict[str, int]:
    """{key: how many of the question's words name it} for each key `asked_keys` finds (a derived
    key too: "how many dimensions does each head get" names head_size twice, n_head once)."""
    words = {stem(t) for t in tokens(clause)}
    out = {}
    for key in {*RESULT_KEYS, *FACT_KEYS, *DERIVED_KEYS}:
        parts = {stem(w) for w in key.split("_") if len(w) > 2 and w not in ("per", "max", "n")}
        if said := len(words & (parts | {stem(w) for w in gloss_words(key)})):
            out[key] = said
    return out
