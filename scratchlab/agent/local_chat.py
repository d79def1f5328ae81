"""`ChatLocalLlama`: a LangChain chat model over llama-cpp-python with constrained, two-stage tool calls.

    from scratchlab.agent.local_chat import ChatLocalLlama
    chat = ChatLocalLlama(model_path="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    chat.bind_tools(tools).invoke([HumanMessage("train a 512-token BPE on shakespeare")])
    # -> AIMessage(tool_calls=[{"name": "train_tokenizer", "args": {"dataset": "shakespeare", "vocab_size": 512}}])

With tools bound, each call (1) picks the action: the model's log-probabilities of the tool names and
`answer`, plus the example bank's classifier as a prior (`scratchlab.agent.bank`, `constrained.choose`); (2) for a
tool, generates only its arguments under a grammar from its JSON schema, then grounds them, puts in
what the request states (`extract`) and resolves references against the lab's records (`state`).
A question back comes from the schema (a required argument missing, a value that names nothing).
Tool calls are therefore always well formed. Answers stream token by token; answers that draw on tool
results or records are grounded first (`grounding`). The llama.cpp side (one shared `Llama` per
model file, threads, saved prompt states) is `scratchlab.agent.llama_runtime`. Prompts are ChatML
(Qwen2.5 and SmolLM2 both use it).
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

from scratchlab.agent import carry, compare, extract, policy, router, state
from scratchlab.agent.bank import Bank
from scratchlab.agent.constrained import choose, constrained_greedy
from scratchlab.agent.grounding import cited_only, ground_reply, quoted_answer, with_sources
from scratchlab.agent.llama_runtime import (
    DEFAULT_N_CTX,
    ENV_THREADS,
    LOCK,
    IdleCores,
    is_looping,
    llama_set_n_threads,
    load_llama,
    load_state,
    prune_states,
    save_state,
    trim_loop,
)
from scratchlab.agent.prompts import ANSWER, CLARIFY, LAB_STATE
from scratchlab.lab import cancel
from scratchlab.tools.sandbox import LAB_DATA_HELP

MAX_SUMMARY_TOKENS = 160  # the answer after a tool result: short, the result itself is shown to the user
CONTEXT_RESERVE = 768  # tokens kept free for the reply
CODE_FENCE = "```python\n"
# Read-only lab data, named at the top of generated code (the tool catalogue shows one sentence per tool).
# The comments are prompt only; the imports stay in the code that runs (the 1.5B used plt unimported).
CODE_HINT_COMMENTS = "".join(
    f"# {line}\n"
    for line in textwrap.wrap(
        f"{LAB_DATA_HELP} Installed: numpy, matplotlib, torch (no pandas). Save plots with plt.savefig('name.png').",
        110,
    )
)
CODE_HINT_IMPORTS = "from lab import runs, curve, plot_runs\nimport matplotlib.pyplot as plt\n"
PRIOR_WEIGHT = 2.0  # how much the example bank's classifier counts against the model's own action scores
CARRY_THRESHOLD = 0.5  # share of neighbours saying "this repeats an earlier call"
EXTEND_THRESHOLD = 0.6  # share of neighbours saying "this adds to the repeated call's list"
CARRY_PRIOR = 0.5  # extra prior mass for the repeated call's tool
LAB_THRESHOLD = 0.5  # share of neighbours saying "this asks about the lab's runs and results"
KEPT_THRESHOLD = 0.5  # P(the request asks for the settings the user keeps, naming none)
# bank prior a job's status tool needs to answer "how's it going?" in place of the model
LIVE_TOOL_FLOOR = 0.1
RECALL_FLOOR = 0.1  # bank prior recall needs, over the model's answer, when a kept memory holds the topic
# bank prior on answering that beats the model's tool for a question about a named record
ANSWER_OVER_TOOL = 0.8
CLARIFY_OVER_ANSWER = (
    0.8  # bank prior on a question back that sends a chosen answer to a tool's missing arguments
)
TOOL_OVER_ANSWER = 0.8  # bank prior on one tool that beats the model's wish to just answer
# a follow-up question right after a look-up (a document search) looks up again at this bank prior
LOOKUP_FLOOR = 0.05
MAX_CODE_TOKENS = 256


MAX_LAB_SNAPSHOTS = 4096  # requests whose lab state `lab_state_last` remembers


def lab_state_last(messages: Sequence[BaseMessage], seen: dict[str, str] | None = None) -> list[BaseMessage]:
    """`messages` with the lab state each request was decided with kept in place before it.

    The system message ends with the lab state as it is now (from `LAB_STATE` on). llama.cpp reuses
    the evaluated prompt up to the first token that differs, and the lab state changes with nearly
    every tool call (a new record, a job's step count); at the end of the system message, before the
    whole conversation, it made every such turn evaluate the conversation again: 60 s for "stop that
    job" six turns into a REPL session while a run trained. So each request keeps the lab state it
    was first decided with (`seen`: {message id: lab state}, filled here): the first request's stays
    in the system message, where it always was, and a later request whose lab state differs from the
    one before gets it as a system message of its own right before it. The evaluated prompt then stays
    valid up to the new request. A first request is rendered exactly as before, and so is a message
    list whose requests have no ids (only the current lab state, in the system message)."""
    msgs = list(messages)
    if not msgs or not isinstance(msgs[0], SystemMessage):
        return msgs
    text = str(msgs[0].content)
    cut = text.find(LAB_STATE)
    if cut < 0:
        return msgs
    now = text[cut:]
    seen = {} if seen is None else seen
    labs = {}
    for i, m in enumerate(msgs):
        if isinstance(m, HumanMessage) and m.id:
            if len(seen) >= MAX_LAB_SNAPSHOTS and m.id not in seen:
                seen.pop(next(iter(seen)))
            labs[i] = seen.setdefault(m.id, now)
    first = min(labs, default=None)
    out: list[BaseMessage] = [SystemMessage(text[:cut] + (labs[first] if first is not None else now))]
    shown = out[0].content
    for i, m in enumerate(msgs[1:], start=1):
        if i in labs and i != first and not str(shown).endswith(labs[i]):
            out.append(SystemMessage(labs[i]))
            shown = labs[i]
        out.append(m)
    return out


class ChatLocalLlama(BaseChatModel):
    """Chat model on a local GGUF with grammar-constrained tool calls (see module docstring).

    Attributes:
        model_path: the .gguf file.
        n_ctx: context window in tokens.
        temperature: sampling temperature for answers (routing is always greedy).
        max_answer_tokens: cap on answer length in tokens.
        max_args_tokens: cap on the argument JSON of one tool call, in tokens.
        state_cache_dir: where the llama.cpp state after the fixed system prompt is saved (None: off).
        jump_forward: evaluate the argument text only one way can go on (the rest of a key, of an
            enum value) in one batch instead of a token at a time (`constrained.json_object_forcing`).
    """

    model_path: str
    n_ctx: int = DEFAULT_N_CTX
    n_threads: int | None = None
    temperature: float = 0.0
    max_answer_tokens: int = 400
    max_args_tokens: int = 200
    state_cache_dir: str | None = None
    jump_forward: bool = True
    _warmed: set[str] = PrivateAttr(default_factory=set)
    _labs: dict[str, str] = PrivateAttr(default_factory=dict)  # the lab state each request was decided with
    # the tool a question back asks for (`carry.clarified_tool`)
    _clarifying: str | None = PrivateAttr(default=None)
    _bank: Bank | None = PrivateAttr(default=None)
    _idle: IdleCores | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "scratchlab-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx}

    @property
    def llm(self):
        return load_llama(self.model_path, self.n_ctx, self.n_threads)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):
        """Bind LangChain tools (or OpenAI tool dicts); calls then return grammar-constrained tool calls."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    # ---- llama.cpp plumbing ---------------------------------------------------------------------
    def _complete(
        self, prompt: str, *, grammar: str, max_tokens: int = 64, forced: Callable[[str], str] | None = None
    ) -> str:
        """Greedy completion of `prompt` under a GBNF grammar, jumping over what `forced` says is the
        only way on (see `scratchlab.agent.constrained`)."""
        with LOCK:
            return constrained_greedy(self.llm, prompt, grammar, max_tokens, forced=forced)

    def _stream_text(self, prompt: str, kwargs: dict[str, Any]) -> Iterator[str]:
        """Stream a completion; stops early when the text starts repeating itself (small models loop)."""
        text = ""
        with LOCK:
            for chunk in self.llm.create_completion(prompt, **kwargs):
                cancel.check()  # Ctrl-C in the REPL: stop at the next token (raises TurnCancelled)
                piece = chunk["choices"][0]["text"]
                text += piece
                yield piece
                if is_looping(text):
                    break

    def _fit(self, messages: list[BaseMessage]) -> str:
        """Render ChatML, dropping the oldest non-system messages until the prompt fits the window,
        each request after the lab state it was decided with (`lab_state_last`)."""
        msgs = list(messages)
        while True:
            prompt = router.render_chatml(lab_state_last(msgs, self._labs)) + f"{router.IM_START}assistant\n"
            n = len(self.llm.tokenize(prompt.encode("utf-8"), special=True))
            if n <= self.n_ctx - CONTEXT_RESERVE or len(msgs) <= 2:
                return prompt
            drop = 1 if isinstance(msgs[0], SystemMessage) else 0
            del msgs[drop]

    def warm_start(self, system_prefix: str) -> None:
        """Evaluate (or restore from disk) the llama.cpp state after `system_prefix`; cheap if done."""
        system_prefix = system_prefix.rstrip()  # the same key whatever follows (lab state, newlines)
        if system_prefix in self._warmed:
            return
        self._warmed.add(system_prefix)
        prompt = f"{router.IM_START}system\n{system_prefix}"
        if not self.state_cache_dir:
            with LOCK:
                self.llm.create_completion(prompt, max_tokens=1, temperature=0.0)
            return
        digest = hashlib.sha256(f"{self.model_path}|{self.n_ctx}|{prompt}".encode()).hexdigest()[:16]
        path = Path(self.state_cache_dir) / f"prefix-{Path(self.model_path).stem}-{digest}.npz"
        with LOCK:
            if path.is_file() and load_state(self.llm, path):
                return
            self.llm.create_completion(prompt, max_tokens=1, temperature=0.0)
            save_state(self.llm, path)
            prune_states(path.parent, f"prefix-{Path(self.model_path).stem}-", keep=path)

    # ---- routing ----------------------------------------------------------------------------------
    @property
    def bank(self) -> Bank:
        """The example bank (embeddings cached next to the saved prompt states)."""
        if self._bank is None:
            self._bank = Bank(cache_dir=self.state_cache_dir)
        return self._bank

    def decide(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> tuple[str, Any]:
        """Pick the next action: ("tool", [(name, args), ...]), (ANSWER, text_iter) or (CLARIFY, text or iter).

        1. A harmful new request gets the fixed refusal (`policy.refusal`), no model call.
        2. The action: the model's choice among the tools, `answer` and `clarify`, with the example
           bank's classifier as a prior (`Bank.action_prior`, `constrained.choose`). A request that
           repeats or corrects an earlier call ("the same but 8 heads") leans to that call's tool.
        3. A tool's arguments: written by the model under the schema's grammar, grounded in the
           request (`router.ground_args`), with what the request states outright put in
           (`extract.stated_values`), carried over from the repeated call (`carry.carry_over`) and
           references resolved against the lab's records (`state.resolve`). A missing required
           argument becomes a question.
        4. An answer about the lab gets the records' facts in its prompt; answers that draw on tool
           results or records are grounded (`grounding.ground_reply`).
        """
        self._fit_threads()
        if messages and isinstance(messages[0], SystemMessage):
            self.warm_start(str(messages[0].content).split(LAB_STATE)[0])
        prompt = self._fit(messages)
        if not tools:
            return ANSWER, self._answer_stream(prompt)
        by_name = {t["function"]["name"]: t["function"] for t in tools}
        recs = state.records_of(messages)
        context, calls = router.turn_context(messages)
        # a summary of this turn's results may not put a record they name at the wrong end of an order
        listed = state.touched_now(messages, recs)
        in_order = compare.in_order(listed)
        if router.should_answer_now(messages):
            head = f'{{"action": "{ANSWER}"}}\n'
            return ANSWER, self._grounded(prompt + head, [context], MAX_SUMMARY_TOKENS,
                                          fallback=router.result_headline(messages), keep=in_order,
                                          asked=router.current_clause(messages))  # fmt: skip
        names = [*by_name, ANSWER, CLARIFY]
        if router.must_continue(messages):  # "do X, then Y": after X, choose among tools only
            names = list(by_name)
        elif messages and isinstance(messages[-1], HumanMessage):
            refused = policy.refusal(str(messages[-1].content))
            if refused:
                return ANSWER, iter([refused])
        clause = router.normalise_request(router.current_clause(messages))
        prior = self.bank.action_prior(clause, names)
        prev = carry.previous_call(messages)
        repeats = prev is not None and (
            self.bank.flag(clause, "carry") >= CARRY_THRESHOLD or state.points_at_settings(clause)
        )
        if repeats and prev[0] in prior:
            prior = {a: p + (CARRY_PRIOR if a == prev[0] else 0.0) for a, p in prior.items()}
        # the model chooses among the tools and `answer`; a question back comes from the schema (a
        # required argument missing, a value that names nothing), not from the model's guess
        choices = [n for n in names if n != CLARIFY]
        action = self._choose(prompt + router.ACTION_PREFIX, choices, prior)
        if action == ANSWER:  # small models answer tool requests phrased as questions; the examples know
            # a number no record could hold comes from the documents, unless the last turn's passages hold it
            before = carry.previous_turn_calls(messages)
            # "what count did it print?" right after a program ran: "it" is that call, its result answers
            after_call = bool(before) and state.about_last_call(clause, recs, state.turn_of(messages) - 1)
            looked_up = after_call or any(set(a) & set(carry.QUERY_ARGS) for _, a in before)
            action = (state.tool_over_answer(prior, choices, by_name, recs, TOOL_OVER_ANSWER, clause, after_call,
                                             fresh=not looked_up)
                      or state.live_tool(prior, by_name, recs, clause, LIVE_TOOL_FLOOR)
                      or state.remembered(prior, by_name, state.memories_of(messages), clause, RECALL_FLOOR,
                                          self.bank.common_words(), used=(prev or ("", {}))[1], recs=recs)
                      or carry.continued_lookup(messages, by_name, prior, LOOKUP_FLOOR)
                      or state.unheld_lookup(prior, by_name, recs, clause, LOOKUP_FLOOR, looked_up)
                      or (self.bank.flag(clause, "lab") < LAB_THRESHOLD  # a question about the lab: records
                          and state.named_tool(prior, choices, by_name, recs, clause, self.bank.unfamiliar,
                                               self.bank.verbs))
                      or action)  # fmt: skip
        repeated = False  # the call asked for was made already: its result answers
        # "stop it" with no sweep in the lab, "carry on with lute": the tool for the record meant
        if action in by_name:
            new_name = extract.stated_name(clause, self.bank.common_words())
            # the prior of a verb phrase alone ("halt the run"), for the tool that acts on the record it names
            rank = lambda text: self.bank.action_prior(text, names)  # noqa: E731
            action = (state.referent_tool(action, prior, by_name, recs, clause, self.bank.verbs(action), rank)
                      or state.named_record_tool(action, prior, by_name, recs, clause, new_name)  # "carry on with lute"
                      or extract.list_tool(action, prior, by_name, clause)  # "2 layers, 4, or 6? try each"
                      or action)  # fmt: skip
        # the answer to the question the last turn asked: "oh just use the demo set then, rank 4, 40
        # steps" after "To run finetune_lora I need the data" goes on with finetune_lora
        asked = carry.clarified_tool(messages)
        if asked in by_name and asked != action and action != CLARIFY:
            said = {a: len(extract.set_by_request(clause, a, by_name[a].get("parameters", {}), self.bank))
                    for a in (asked, action) if a in by_name}  # fmt: skip
            # "the shallower one" after "which run?": a record of the kind the asked tool takes, picked out
            said[asked] += bool(compare.picked(clause, recs, by_name[asked].get("parameters", {})))
            action = asked if said[asked] > said.get(action, 0) else action
        if repeats and action in by_name:  # "train a second one just like it": the tool that made "it"
            action = carry.remade_tool(action, messages, recs, clause, by_name) or action
        # the bank reads the request as one that leaves out what a tool needs ("fine-tune an adapter
        # for me"): the model picks the tool, and what is missing becomes the question back
        underspecified = (
            action == ANSWER and CLARIFY in names and prior.get(CLARIFY, 0.0) >= CLARIFY_OVER_ANSWER
        )
        if underspecified:
            action = self._choose(prompt + router.ACTION_PREFIX, list(by_name), prior)
        if (
            action in by_name
            and prior.get(ANSWER, 0.0) >= ANSWER_OVER_TOOL
            and state.asks_about_record(clause, recs)
        ):
            action = ANSWER  # "remind me how many merge rules sonnet320 holds?" went to encode_text
        if action in by_name:
            action = state.own_tool(action, by_name, recs, clause)
            params = by_name[action].get("parameters", {})
            if underspecified and router.is_code_tool(params) and not extract.stated_code(clause):
                return CLARIFY, self._ask(action, ["code"], params)  # "run my script pls"
            set_here = extract.set_by_request(clause, action, params, self.bank)  # what the request sets
            args = self._arguments(prompt, action, params, clause, set_here,
                                   router.clause_context(messages, clause, params.get("properties", {})), context)  # fmt: skip
            args = router.ground_args(args, context, params)
            args = extract.stated_values(args, clause, action, params, self.bank)
            every = self.bank.flag(clause, "kept") >= KEPT_THRESHOLD  # "sample with my go-to settings"
            kept = extract.remembered_numbers(
                clause, state.memories_of(messages), action, params, self.bank, every
            )
            args = {**args, **kept}  # "at my favourite temperature": the kept value, not the model's guess
            if action == asked:  # "the shallower one" answers "which run?" of "resume one of them to 300
                # steps": the asked request's own settings hold, under what the answer says
                earlier = router.normalise_request(carry.asked_request(messages))
                said_then = extract.set_by_request(earlier, action, params, self.bank)
                args = {**{k: v for k, v in said_then.items() if k not in state.ARG_KINDS}, **args}
            # "using the r and lora_alpha from those examples": the values the conversation gave them
            labels = extract.arg_words(action, params, self.bank)
            args = {**args, **carry.said_values(clause, params, messages, set_here, labels)}
            if repeats and carry.previous_call(messages):  # its last call (or another tool's), calls between
                extend = self.bank.flag(clause, "extend") >= EXTEND_THRESHOLD
                args = carry.carry_over(action, args, messages, recs, params, extend=extend)
            elif state.bare_pronoun(clause) and (said := carry.said_before(messages, recs)):
                args = {**extract.stated_numbers(said, action, params, self.bank), **args}
            props = params.get("properties", {})
            picked: set[str] = set()
            spent = {
                float(v): a
                for a, v in set_here.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            for arg, prop in props.items():
                if extract.enum_options(prop):  # a choice among fixed values ('smollm2'), not a record
                    continue
                pool = [r for r in recs if r.kind in state.ARG_KINDS.get(arg, ())]
                ends = [] if state.names_in(clause, pool) else compare.at_ends(clause, pool)
                if len(ends) == 1 or (ends and state.takes_list(prop)):  # "my lowest-loss model"
                    args[arg] = (
                        [r.ref for r in state.in_made_order(ends)] if state.takes_list(prop) else ends[0].ref
                    )
                    picked.add(arg)  # "the bigger of my two tokenizers" counts two, and picks one
                    continue
                value, default, described = args.get(arg), prop.get("default"), prop.get("description", "")
                resolved = state.resolve(arg, value, clause, recs, default, described, spent)
                if state.takes_list(prop) and not isinstance(value, list):  # one name or none where a
                    # list goes: the records the clause names or describes, if they are not just that one
                    # ("runs": "cheddar" for "every run that used the sudoku solutions")
                    seed = [value] if isinstance(value, str) else []
                    listed = state.resolve(arg, seed, clause, recs, default, described, spent)
                    resolved = listed if listed != seed else resolved
                if resolved is not None:  # one record for a list of them ("show its curve") is a list of one
                    args[arg] = (
                        [resolved] if state.takes_list(prop) and isinstance(resolved, str) else resolved
                    )
                else:
                    args.pop(arg, None)  # the tool's default ("last") then applies
            args = state.resolve_pronoun(args, clause, recs, props)
            # a name the user gives is the new artifact's, for a tool that makes one; else it names a record
            # ("how does the tokeniser called jive stack up ...": compare_tokenizers takes no name)
            new = extract.stated_name(clause) if "name" in props else None
            taken = [new or "", *extract.arg_words(action, params, self.bank), *action.split("_"),
                     *(x for r in recs for x in (r.name, r.id)), *(o for p in props.values() for o in extract.enum_options(p))]  # fmt: skip
            unquoted = extract.unquoted(clause)  # "encode 'obsidian dreams'" names no tokenizer
            # the verbs that ask for the tool: "stop thistle-lr" names its object; "look something up", no topic
            verbs = self.bank.verbs(action)
            # a text of one word holds no text to work on: the model put a name there ("Put skipper next
            # to the OpenAI tokenizers": text 'skipper', tokenizer 'last')
            lone = {a: v for a, v in args.items()
                    if a in extract.TEXT_ARGS and isinstance(v, str) and len(v.split()) == 1}  # fmt: skip
            probe = {a: v for a, v in args.items() if a not in lone}
            written = [v for v in lone.values() if self.bank.unfamiliar(v)]
            if stray := state.stray_name(
                unquoted, probe, props, taken, self.bank.unfamiliar, verbs, written
            ):  # "using lamp1k"
                args[stray[0]] = [stray[1]] if state.takes_list(props[stray[0]]) else stray[1]
                args = {a: v for a, v in args.items() if not (a in lone and v.lower() == stray[1].lower())}
            for arg in extract.TEXT_ARGS:  # "how does mine do on that same phrase?": the text said before
                # or the model wrote the pointer itself as the text ("ask the first adapter the same thing")
                pointer = state.only_pointer(args.get(arg), clause)
                if arg in props and (not args.get(arg) or pointer) and state.refers_to_kind(clause, arg):
                    if said := carry.earlier_text(messages, arg):
                        args[arg] = said
            known = {x for r in recs for x in (r.name, r.id)}
            kinds = {k for a in props for k in state.ARG_KINDS.get(a, ())}  # of the records the tool reads
            # their nouns name no topic: a query "my index" looks for nothing
            read = set().union(*(state.KIND_NOUNS.get(k, set()) for k in kinds))
            refs = {a: v for a, v in args.items() if a in state.ARG_KINDS}
            vague = router.vague_args(refs, params, known, verbs) + router.vague_args(
                {a: v for a, v in args.items() if a not in refs}, params, known, verbs, read
            )
            vague = [a for a in vague if args[a] != extract.stated_quote(clause)]
            vague += [a for a in props if a not in args and state.dangling(clause, a, recs)]
            # "merge my qwen adapter" beside two such adapters: which one?
            vague += [a for a in props if a not in picked and not state.takes_list(props[a])
                      and state.ambiguous(clause, a, recs, spent)]  # fmt: skip
            for arg in extract.TEXT_ARGS:  # "the opening line of my novel" is no text: ask for a needed one
                if not extract.described_text(args.get(arg), clause):
                    continue
                if arg in params.get("required", ()):
                    vague.append(arg)
                else:
                    args.pop(arg)
            if isinstance(args.get("fact"), str):  # what the user asked to keep, in full
                # in the user's own words: "at most six hours" is no "360 minutes" (`normalise_request`)
                args["fact"] = router.faithful_fact(
                    args["fact"], router.current_clause(messages), list(by_name)
                )
                args["fact"] = carry.referred_values(args["fact"], messages)  # "that vocabulary size"
            said = "\n".join(str(m.content) for m in messages if isinstance(m, HumanMessage | ToolMessage))
            vague += router.invented_args(args, said, list(by_name))  # "remember this for me", with no "this"
            if vague and CLARIFY in names:  # "encode some text", "train it on my data": which one?
                return CLARIFY, self._ask(action, vague, params)
            for arg in carry.QUERY_ARGS:  # "the tram rulebook I indexed, who has right of way ...?": the
                # model's query "tram rulebook" names the index to search, and the question goes unasked
                pool = [r for r in recs if r.kind in kinds]
                if isinstance(args.get(arg), str) and state.names_only_records(args[arg], pool):
                    args.pop(arg)
            for arg in router.missing_required(args, params):
                if arg in carry.QUERY_ARGS and router.content_words(clause, list(by_name)) - set(verbs):
                    args[arg] = clause  # a question with something in it is a fine query
            missing = router.missing_required(args, params)
            if missing:
                return CLARIFY, self._ask(action, missing, params)
            for arg in props:  # "sample from both runs": one call per record, or one list of them
                several = state.plural(clause, arg, recs) if arg not in picked else []
                if several and state.takes_list(props[arg]):
                    return "tool", [(action, {**args, arg: [r.ref for r in several]})]
                if several:
                    return "tool", [(action, {**args, arg: r.ref}) for r in several]
            if (action, args) not in calls and not carry.same_lookup(action, args, params, messages):
                return "tool", [(action, args)]
            # the same call again (this turn, or the last turn's look-up): answer from its result
            action, repeated = ANSWER, True
        head = f'{{"action": "{action}"}}\n'
        if (
            action == ANSWER
            and recs
            and not router.turn_failed(messages)  # a call failed: the reply says so, not the records
            and (
                self.bank.flag(clause, "lab") >= LAB_THRESHOLD
                or state.refers_to_kind(clause, "run")
                or state.names_in(clause, recs)  # a named record: answered from the records
                or state.asks_last_touched(clause, recs)  # "so how wide is each head?" after a run
            )
        ):
            asked = state.about(clause, recs)
            facts = compare.facts(asked, clause=clause)
            # a reply dropped for a wrong order or number falls back to the computed order, else the records
            shown = "\n".join(compare.compared(asked[: compare.MAX_FACTS], clause)) or facts
            return ANSWER, self._grounded(self._with_note(prompt, facts) + head, [clause, facts, context],
                                          self.max_answer_tokens, fallback=f"From the lab's records:\n{shown}",
                                          keep=compare.in_order(asked, clause))  # fmt: skip
        if (
            action == ANSWER and calls
        ):  # after tool results (an error too): only what they and the request hold
            return ANSWER, self._grounded(prompt + head, [context], self.max_answer_tokens,
                                          fallback=router.result_headline(messages), keep=in_order,
                                          asked=clause)  # fmt: skip
        earlier = [str(m.content) for m in messages if isinstance(m, ToolMessage)]
        if action == ANSWER and earlier and (state.bare_pronoun(clause) or repeated):
            # "what's the last one it printed?": a question about an earlier result is answered from
            # it; a number no result or request holds is dropped (the 1.5B said "144" for a run that
            # printed nothing)
            said = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
            return ANSWER, self._grounded(prompt + head, [*said, *earlier], self.max_answer_tokens,
                                          fallback=f"From the earlier result:\n{earlier[-1][:400]}")  # fmt: skip
        return action, self._answer_stream(prompt + head)

    def _ask(self, action: str, missing: list[str], params: dict[str, Any]) -> str:
        """The question back for `action`'s `missing` arguments; the reply's message records the tool,
        so that the next turn, which answers it, goes on with that tool (`carry.clarified_tool`)."""
        self._clarifying = action
        return router.clarify_question(action, missing, params)

    def _with_note(self, prompt: str, facts: str) -> str:
        """`prompt` (ending in an open assistant turn) with the lab's records inserted just before it."""
        opener = f"{router.IM_START}assistant\n"
        base = prompt[: -len(opener)] if prompt.endswith(opener) else prompt
        return (
            f"{base}{router.IM_START}user\nLab records (answer from these):\n{facts}{router.IM_END}\n{opener}"
        )

    def _fit_threads(self) -> None:
        """Use only the cores other processes leave idle (see `IdleCores`), unless threads were fixed."""
        if self.n_threads or os.environ.get(ENV_THREADS):
            return
        if self._idle is None:
            self._idle = IdleCores()
        n = min(self._idle(), 8)
        with LOCK:
            llama_set_n_threads(self.llm._ctx.ctx, n, n)

    def _choose(self, prompt: str, names: list[str], prior: dict[str, float]) -> str:
        with LOCK:
            llm = self.llm
            options = {n: llm.tokenize(f'{n}"'.encode(), add_bos=False, special=False) for n in names}
            return choose(llm, prompt, options, prior, weight=PRIOR_WEIGHT)

    def _arguments(
        self, prompt: str, action: str, params: dict[str, Any], clause: str, fixed: dict[str, Any], context: str,
        support: str,
    ) -> dict[str, Any]:  # fmt: skip
        """The model's arguments for `action`: JSON under the schema's grammar grounded in `context`
        (`router.grounded_schema`), with `fixed`, those the request sets itself
        (`extract.set_by_request`), written first and evaluated as one batch, free strings that
        `support` cannot hold closed early; or Python in a fence."""
        if router.is_code_tool(params):  # source code: written as a fenced block, not a JSON string
            if stated := extract.stated_code(clause):  # the request writes it out: run what it says
                return {"code": stated}
            task = f"# {' '.join(clause.split())[:200]}\n"
            lab = self.bank.flag(clause, "lab") >= LAB_THRESHOLD
            hint = CODE_HINT_COMMENTS + CODE_HINT_IMPORTS if lab else ""
            code = self._code(prompt + f'{{"action": "{action}"}}\n{CODE_FENCE}{hint}{task}')
            return {"code": (CODE_HINT_IMPORTS if lab else "") + task + code} if code.strip() else {}
        grounding = {"fixed": fixed,
                     "reusable": [k for k in params.get("properties", {}) if extract.says_name(k, clause)]}  # fmt: skip
        forced = router.args_forcing(params, context, support, **grounding) if self.jump_forward else None
        raw = self._complete(prompt + f'{{"action": "{action}", "args": ', grammar=router.args_grammar(params, context, **grounding),
                             max_tokens=self.max_args_tokens, forced=forced)  # fmt: skip
        try:
            args = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return args if isinstance(args, dict) else {}

    def _grounded(
        self,
        prompt: str,
        sources: list[str],
        max_tokens: int,
        fallback: str | None = None,
        keep: Callable[[str], bool] | None = None,
        asked: str = "",
    ) -> Iterator[str]:
        """The whole answer, then grounded: a sentence with a number no source holds, or failing `keep`,
        is dropped. When nothing is left (or only citations), the passage sentence that best answers
        `asked` (`grounding.quoted_answer`) stands in, else `fallback`."""
        text = "".join(self._answer_stream(prompt, max_tokens=max_tokens))
        reply = ground_reply(router.unwrap_json_answer(text.strip()), sources, "", keep)
        if not reply.strip() or cited_only(reply):  # nothing grounded left: the passages, else the fallback
            reply = quoted_answer(sources, asked) or ground_reply("", sources, fallback)
        yield with_sources(reply, sources)

    def _code(self, prompt: str) -> str:
        """Python source for a code tool, written by the model inside a ```python fence.

        A coder model writes code in a fence far more reliably than as an escaped JSON string (with
        the 1.5B, greedy JSON-escaped code fell into import loops until the token cap). A completion
        that starts looping is cut before the repeated part.
        """
        text = "".join(
            self._stream_text(prompt, dict(max_tokens=MAX_CODE_TOKENS, temperature=0.0, top_k=1,
                                           repeat_penalty=1.0, stop=["```", router.IM_END], stream=True))
        )  # fmt: skip
        return trim_loop(text).strip("\n")

    def _answer_stream(self, prompt: str, max_tokens: int | None = None) -> Iterator[str]:
        return self._stream_text(
            prompt,
            dict(max_tokens=max_tokens or self.max_answer_tokens, temperature=self.temperature,
                 top_k=1 if self.temperature == 0 else 40, repeat_penalty=1.0, stop=[router.IM_END], stream=True),
        )  # fmt: skip

    # ---- LangChain interface --------------------------------------------------------------------
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        tools: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        kind, payload = self.decide(messages, tools or [])
        if kind == "tool":
            chunks = [
                {"name": name, "args": json.dumps(args), "id": f"call_{uuid.uuid4().hex[:12]}", "index": i}
                for i, (name, args) in enumerate(payload)
            ]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks))
            return
        extra = {
            "action": kind,
            **({"tool": self._clarifying} if kind == CLARIFY and self._clarifying else {}),
        }
        self._clarifying = None
        if isinstance(payload, str):
            payload = iter([payload])
        started, held = False, None  # an answer that starts with "{" is held back and unwrapped at the end
        for piece in payload:
            if not started:
                piece = piece.lstrip()
                if not piece:
                    continue
                started = True
                if piece.startswith("{"):
                    held = ""
            if held is not None:
                held += piece
                continue
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece, additional_kwargs=extra))
            extra = {}  # chunks are merged by concatenation: the action goes on the first one only
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        if held is not None:
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=router.unwrap_json_answer(held), additional_kwargs=extra)
            )
        elif not started:
            yield ChatGenerationChunk(message=AIMessageChunk(content="", additional_kwargs=extra))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        final: ChatGenerationChunk | None = None
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            final = chunk if final is None else final + chunk
        assert final is not None
        msg = final.message
        ai = AIMessage(content=msg.content, additional_kwargs=dict(msg.additional_kwargs),
                       tool_calls=getattr(msg, "tool_calls", []))  # fmt: skip
        return ChatResult(generations=[ChatGeneration(message=ai)])
