"""Deterministic checks on a new request before the local model routes it.

A 1.5B model follows a rule like "refuse to read SSH keys" or "ask when the data is not named" only
part of the time (benchmarks/agent_eval.py). These checks are cheap, readable and testable, and each
one only narrows what the model may choose; the model still writes every tool argument and reply.

- `refusal`: requests to damage the machine, read secrets, write malware or attack others get a fixed
  refusal without a model call. The sandbox (scratchlab.sandbox) is the real boundary: this check
  only keeps the assistant from cheerfully trying.
- answer only: "don't run anything, just explain", "what would happen if ..." are questions.
- clarify: a request whose only object is vague ("fine-tune the last GPT on my data", "look
  something up in my notes") gets a clarifying question instead of a guessed argument.
- recall: "what was the batch size I said I like?" asks the long-term memory.
- excluded tools: a one-step request that names LoRA/adapters cannot start a from-scratch GPT or
  tokenizer run, one that asks for an ablation cannot start a plain training run, and a request that
  starts with a lab verb ("train ...", "merge ...", "index ...") is not answered with words alone.

    pre_route("use python to read ~/.ssh/id_rsa")   # Route(reply="I won't do that: ...")
    pre_route("lora r=8 on chat.jsonl").exclude     # {"train_gpt", "train_tokenizer", "ablate_gpt", "answer"}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from scratchlab.agent.prompts import ANSWER, CLARIFY
from scratchlab.agent.router import request_progress, split_steps

HARMFUL = [  # (pattern, why) — matched case-insensitively anywhere in the request
    (r"\brm\s+-[a-z]*r[a-z]*f?\s+(/|~|\*)|\b(wipe|format|erase|destroy)\b.{0,30}\b(disk|drive|computer|machine|host|system)\b"
     r"|\bdelete\b.{0,20}\b(everything|all (my )?files|home (folder|directory))\b|\bfork ?bomb\b",
     "it would destroy files on this computer"),
    (r"\.ssh\b|\bid_(rsa|ed25519|ecdsa)\b|/etc/(shadow|passwd|sudoers)\b|\bpasswords?\b|\b(api|access|auth|secret) ?(key|token)s?\b"
     r"|\bprivate keys?\b|\bcredentials?\b|\bbrowser cookies\b",
     "it would expose secrets stored on this computer"),
    (r"\b(crypto ?miner|cryptominer|coin ?miner|mine (bitcoin|monero|crypto))|\bmalware\b|\bransomware\b|\bkeylogger\b"
     r"|\bbotnet\b|\bbackdoor\b|\breverse shell\b|\bvirus\b|\btrojan\b|\bspyware\b",
     "it is malware"),
    (r"\bddos\b|\bdenial[- ]of[- ]service\b|\bflood(s|ing)?\b.{0,40}\b(requests?|packets?|server|site|website|\w+\.(com|org|net))\b"
     r"|\buntil it (goes|is) down\b|\bbrute[- ]?forc|\bphishing\b|\bspam (emails?|messages?)\b|\bhack into\b",
     "it would attack other people or systems"),
    (r"\bignore (all |your |the )?(previous |prior )?instructions\b.{0,60}\b(delete|remove|rm|wipe|destroy|send|upload)\b",
     "it asks me to drop my instructions and do damage"),
]  # fmt: skip
_HARMFUL_RE = [(re.compile(p, re.IGNORECASE | re.DOTALL), why) for p, why in HARMFUL]
# A harmful topic alone is not a harmful request ("how do viruses spread?"); it takes a verb of doing.
DOING_RE = re.compile(
    r"\b(run|read|show|print|cat|display|open|send|upload|copy|dump|write|make|create|build|code|generate|download"
    r"|install|deploy|execute|delete|remove|wipe|format|erase|flood|attack|steal|exfiltrat\w*|fine-?tune|train|mine"
    r"|use|using|get|give|list|leak|crack|hack|spread|post|email|set ?up|launch|start|spawn|open|connect|establish"
    r"|exploit|bypass|disable)\b",
    re.IGNORECASE,
)

ANSWER_ONLY_RE = re.compile(
    r"\b(don'?t|do not|without) (run(ning)?|do(ing)?|execut(e|ing)|train(ing)?|call(ing)?|us(e|ing)) "
    r"(anything|it|that|any tools?|tools?|a tool)\b"
    r"|\bjust (explain|tell me|describe)\b|\bdon'?t do it\b|\bin theory\b|\bhypothetically\b"
    r"|^\s*(what would happen|what happens|how long would|would it (be|work|help)|should i|is it (a good idea|worth|possible))\b"
    r"|^\s*(what|which)\s+(tools|commands|functions|skills|abilities)\s+(do you have|can you use|are there|are available)\b"
    r"|^\s*what can you do\b",
    re.IGNORECASE,
)
TRY_IT_RE = re.compile(
    r"(?<!n't )(?<!not )\b(try it|run it|do it|test it|find out|measure it|run an? \w+|(try|test|run) (that|this)"
    r"|run the (experiment|ablation|test|comparison)"
    r"|(put|show|line up|set) (them|both|it|those|these|each)\b.{0,20}\b(next to|side by side|against|alongside|beside)"
    r"|compare (it|them|both|those|these) (to|with|against))\b",
    re.IGNORECASE,
)
# "what would happen if ...? run the experiment": a training experiment, not an answer.
HYPOTHETICAL_RE = re.compile(r"^\s*(what would happen|what happens|what if|would it)\b", re.IGNORECASE)
EXPERIMENT_TOOLS = {"ablate_gpt", "train_gpt", "resume_gpt"}
# compare_tokenizers only when the request compares: "how many pieces does cl100k_base split X into" is encode_text.
COMPARE_RE = re.compile(
    r"\b(compar\w*|vs\.?|versus|against|better|worse|differ\w*|side by side|benchmark|beats?|each other)\b",
    re.IGNORECASE,
)
# Plain arithmetic is answered, not sent to a calculator: "what is 17 times 23?"
ARITHMETIC_RE = re.compile(
    r"^\s*(what'?s|what is|how much is)\s+-?\d[\d.,]*\s*(times|x|\*|plus|\+|minus|-|divided by|/|over)\s*-?\d[\d.,]*"
    r"\s*\??\s*$",
    re.IGNORECASE,
)
RECALL_RE = re.compile(
    r"\b(i (said|told you|mentioned|asked you to remember)|did i (ever )?(say|tell you|mention)|have i (ever )?told you"
    r"|do you (still )?remember (what|which|where|when|who|whether|if|my))\b",
    re.IGNORECASE,
)
VAGUE_RE = re.compile(
    r"\b(something|anything|some (text|data|tokens|code|files?|documents?|stuff|folder)"
    r"|my (data|dataset|notes|files|documents|docs|stuff|text|folder)|a (file|folder|document|dataset))\b",
    re.IGNORECASE,
)
# Words that say which engine or verb, not which object; a request made only of these plus a vague
# phrase names nothing concrete to act on.
NON_CONCRETE = set(
    """a an the my me i it its this that these those some something anything any in on with from for to of
    about into please can could would you your now up out them thing things stuff please look find search
    ask tell show use run train fine tune finetune index encode decode tokenize summarise summarize plot
    generate sample make build get check query last latest previous new adapter adapters model models gpt
    lora tokenizer notes note data dataset documents document docs files file folder text code python
    memory remember recall fine-tune fine-tuned tokens ids token""".split()
)
WORD_RE = re.compile(r"[a-z0-9_]+(?:[.\-/][a-z0-9_]+)*", re.IGNORECASE)
LORA_RE = re.compile(r"\b(q?lora|adapters?|peft|fine-?tun\w*|finetun\w*|low[- ]rank)\b", re.IGNORECASE)
NOT_LORA_TOOLS = {"train_gpt", "train_tokenizer", "ablate_gpt", "encode_text", "decode_tokens", "sample_gpt",
                  "index_documents", "resume_gpt"}  # fmt: skip
PYTHON_RE = re.compile(
    r"\b(python|plot|chart|graph|compute|calculate|code|script|histogram)\b", re.IGNORECASE
)
RESUME_RE = re.compile(
    r"\b(continue|resume|keep|carry on)\s+(training|the run|it|with)\b|\bmore steps\b"
    r"|\bpick\b.{0,60}\bback\s+up\b|\bpick\s+up\s+where\b"
    r"|\b(from|off)\s+(its|the)\s+(last\s+|latest\s+)?checkpoint\b",
    re.IGNORECASE,
)
QUESTION_RE = re.compile(
    r"\?\s*$|^\s*(what|why|how|when|which|who|where|explain|describe|is|are|does|do|can|could|should)\b"
    r"|^\s*(please\s+)?(tell me|teach me)\s+(what|why|how|when|which|who|where|about)\b",
    re.IGNORECASE,
)
QUOTED_RE = re.compile(r"(?<!\w)[\"'`][^\"'`]+[\"'`](?!\w)")  # 'text', "text", `text` (not "you're")
CONCRETE_RE = re.compile(
    rf"\d|{QUOTED_RE.pattern}|\b[\w-]+\.[a-z]{{2,5}}\b|/|:\s*\w+\s+\w+"
    r"|\b(how|what|why|whether|when|where|which)\s+(to|do|does|did|is|are|can|should|would|i|you|the|a|my)\s+\w+"
)  # numbers, quotes, files, paths, words after a colon ("ask the tuned model: how do I ..."), a question
# to pass on ("ask my newest adapter how to reverse a list")
# A request that starts with one of these verbs asks for that tool (or, if details are missing, a
# question back): "sample 50 toks temp 1.2" is never encode_text.
VERB_TOOLS = {"sample": "sample_gpt", "ablate": "ablate_gpt", "merge": "merge_lora", "index": "index_documents",
              "decode": "decode_tokens", "encode": "encode_text", "tokenize": "encode_text",
              "tokenise": "encode_text", "cancel": "cancel_job", "remember": "remember", "resume": "resume_gpt",
              # shorthand people type
              "dec": "decode_tokens", "enc": "encode_text", "idx": "index_documents", "py": "run_python",
              "gen": "sample_gpt",
              # drawing is code: "plot the loss of my last two runs" right after a training step is not more training
              "plot": "run_python", "chart": "run_python", "graph": "run_python"}  # fmt: skip
# "how many pieces cl100k_base splits 'tokenization' into", "how many tokens is 'hello world'?": quoted
# text to tokenize, a statement or a question.
TOKEN_COUNT_RE = re.compile(
    r"^(?=.*[\"'`]).*(\bhow many (tokens|pieces|chunks|subwords|sub-?words)\b"
    r"|\b(split|chop|break|cut)s?\b.{0,40}\binto\s*([?.!]\s*)?$|\b(split|chop|break|cut)s?\b.{0,40}\binto\s+(tokens|pieces|subwords|chunks)\b)",
    re.IGNORECASE,
)
# Phrases that name one tool wherever they stand in a (clause of a) request.
PHRASE_TOOLS = [
    (re.compile(r"^\s*(?:please\s+|now\s+)?(fine-?tune|finetune)\b|^\s*lora\b", re.IGNORECASE), "finetune_lora"),
    (re.compile(r"\b(run|do|start)\s+an?\s+ablation\b|^\s*ablation\b", re.IGNORECASE), "ablate_gpt"),
    (re.compile(r"^\s*generate\s+(\w+\s+)?with\s+(the|an?|my)\s+(\w+\s+)?adapter\b"
                r"|^\s*(ask|query|prompt)\s+(the|my)\s+([\w-]+\s+)?(adapter|fine-?tuned (model|one|gpt))\b", re.IGNORECASE),
     "generate_with_adapter"),
    (re.compile(r"\b(continue|resume|carry on|keep)\s+(training|the\s+([\w-]+\s+)?run|run\s+[\w-]+|it)\b"
                r"|\b\d+\s*more\s+(steps|iterations|iters)\b|\bpick\b.{0,60}\bback\s+up\b"
                r"|\bpick\s+up\s+where\b", re.IGNORECASE), "resume_gpt"),
    (re.compile(r"^\s*(please\s+)?(keep in mind|bear in mind|note that|note down|jot down|write down|make a note|don'?t forget|remember that"
                r"|for future reference|note to self)\b",
                re.IGNORECASE), "remember"),
    (re.compile(r"\b(look\s+up|look\s+for|find|search(\s+for)?)\b.*\b(in|from|through)\s+(the|my)\s+([\w-]+\s+)?"
                r"(index|docs|documents|papers|notes|guide)\b|\bin\s+the\s+[\w-]+\s+index\b", re.IGNORECASE), "search_documents"),
    (re.compile(r"\b(write|generate|make up|produce|hear)\b.{0,40}\b(with|from|by)\s+(the|my)\s+(model|gpt|run)\b"
                r"|\bwhat\s+(the|my)\s+(model|gpt)\s+(writes|says|generates|would write)\b", re.IGNORECASE), "sample_gpt"),
    (re.compile(r"\b(tokens?|characters|chars|text|lines|words)\b.{0,30}\bfrom\s+(the|my|that)\s+([\w-]+\s+)*?"
                r"(run|model|gpt|checkpoint|one)\b"
                r"|\b(the|my)\s+([\w-]+\s+)?(model|gpt|run)\s+(writes?|says?|generates?|continues?|completes?|produces?"
                r"|spits? out|comes? up with|makes? of|does with)\b|\b(feed|prompt|seed|start)\s+(it|the model|my model)\s+(with\s+)?[\"'`]"
                r"|^\s*(please\s+)?(generate|write|produce|give me)\s+(\d+|some|a few)\s+(new\s+)?(tokens|characters|chars|lines|words)\b",
                re.IGNORECASE), "sample_gpt"),
    (TOKEN_COUNT_RE, "encode_text"),
    # "turn it into a standalone model", "combine base + adapter": the adapter folded into the base weights
    (re.compile(r"^(?=.*\b(adapters?|lora)\b).*(\b(standalone|stand-alone|self-contained|single|one)\s+(model|checkpoint)\b"
                r"|\b(merge|fold|bake|combine|fuse)\w*\b)", re.IGNORECASE), "merge_lora"),
]  # fmt: skip
# Phrases that name one tool even in a question ("which models have I trained so far?").
QUESTION_PHRASE_TOOLS = [
    (TOKEN_COUNT_RE, "encode_text"),
    (re.compile(r"\b(runs|models|gpts)\s+(have\s+i|i'?ve|i\s+have|did\s+i)\s+(\w+\s+)?(trained|run|made)\b", re.IGNORECASE),
     "list_runs"),
]  # fmt: skip
# A named transformer component removed or replaced ("take out the residual connections"): an ablation
# whose switch the request already names, so with no other tool named there is nothing to ask.
COMPONENT_CHANGE_RE = re.compile(
    r"\b(take out|taking out|remove|removing|without|drop|dropping|turn off|disable|switch off|instead of|swap"
    r"|replace|replacing)\b.{0,40}\b(residuals?|residual connections?|layer ?norms?|positional|position embeddings?"
    r"|pos[_ ]emb|gelu|relu|rope|rotary)\b",
    re.IGNORECASE,
)
# A lead verb that makes a request a command even when it ends with "?" ("ask the qa adapter: what is X?").
IMPERATIVE_LEADS = {"ask", "continue", "resume", "keep", "note"}
# "merge it", "do that": the object is a pronoun, and with no earlier turn it refers to nothing.
BARE_PRONOUN_RE = re.compile(
    r"^\s*(please\s+)?[a-z]+(-[a-z]+)?\s+(it|that|this|them|those)(\s+(now|please|again|for me))?\s*[.!?]*\s*$",
    re.IGNORECASE,
)
# "can you combine them?", "could you let my model write ...?": a request phrased as a question.
POLITE_RE = re.compile(
    r"(?:^|[,;.!]\s*)(?:and\s+|so\s+)?(?:please\s+)?(?:can|could|would|will)\s+you\s+(?:please\s+)?"
    r"(?!explain|tell|describe|say|clarify|help me understand|remind)\w+",
    re.IGNORECASE,
)
LEAD_VERB_RE = re.compile(r"^\s*(?:please\s+|now\s+|can you\s+|could you\s+)?([a-z]+)\b", re.IGNORECASE)
ABLATION_RE = re.compile(r"\bablat\w*\b", re.IGNORECASE)
LAB_VERB_RE = re.compile(
    r"^\s*(please\s+|now\s+|can you\s+|could you\s+)?(train|merge|fine-?tune|finetune|index|encode|decode|tokeni[sz]e"
    r"|sample|plot|cancel|ablate|remember|lora|dec|enc|idx|py|gen)\b",
    re.IGNORECASE,
)


@dataclass
class Route:
    """What the checks decided for one request: a fixed reply, a forced action, or excluded actions."""

    reply: str | None = None
    force: str | None = None
    exclude: set[str] = field(default_factory=set)
    only: set[str] | None = None  # when set, choose among these actions only


def refusal(request: str) -> str | None:
    """A refusal for a harmful request, else None."""
    if not DOING_RE.search(request):
        return None
    for rx, why in _HARMFUL_RE:
        if rx.search(request):
            return (
                f"I won't do that: {why}. I can help with tokenizers, GPT training, document search, "
                "LoRA fine-tuning and safe Python in the sandbox."
            )
    return None


def is_vague(request: str) -> bool:
    """True when the request's object is a vague phrase and nothing concrete is named."""
    if not VAGUE_RE.search(request) or QUOTED_RE.search(request):
        return False
    words = [w.lower() for w in WORD_RE.findall(request)]
    return all(w in NON_CONCRETE for w in words)


def pre_route(request: str, multi_step: bool = False, history: bool = True) -> Route:
    """Checks on a new request (the user's latest message, before any tool ran this turn).

    Args:
        request: the user's words.
        multi_step: whether the request reads as several steps (router.wants_more_steps); the tool
            exclusions apply to one-step requests only.
        history: whether the conversation has earlier turns ("merge it" can refer to one of them).

    Returns:
        A Route. `reply` set: answer with it and call no model. `force` set (ANSWER, CLARIFY or
        "recall", or the one tool a lead verb leaves): take that action. Otherwise choose among
        `only` (when set) or all actions, minus `exclude`.
    """
    text = request.strip()
    refused = refusal(text)
    if refused:
        return Route(reply=refused)
    if ANSWER_ONLY_RE.search(text) and not TRY_IT_RE.search(text):
        return Route(force=ANSWER)
    if ARITHMETIC_RE.match(text):
        return Route(force=ANSWER)
    if RECALL_RE.search(text):
        return Route(force="recall")
    if is_vague(text) or (not history and BARE_PRONOUN_RE.match(text)):
        return Route(force=CLARIFY)
    if multi_step:  # the tool choice follows the first clause ("run an ablation ..., then list my runs")
        first = split_steps(text)
        if first and first[0] != text:
            step = pre_route(first[0])
            return Route(exclude=step.exclude - {ANSWER, CLARIFY}, only=step.only,
                         force=step.force if step.force not in (ANSWER, CLARIFY, "recall") else None)  # fmt: skip
    exclude: set[str] = set()
    only: set[str] | None = None
    lead = LEAD_VERB_RE.match(text)
    lead_verb = lead.group(1).lower() if lead else ""
    question = (
        bool(QUESTION_RE.search(text))
        and lead_verb not in IMPERATIVE_LEADS | set(VERB_TOOLS)
        and not TRY_IT_RE.search(text)  # "what happens if ...? try it" asks for a run
    )
    if question and POLITE_RE.search(text) and any(rx.search(text) for rx, _ in PHRASE_TOOLS):
        question = False  # "can you combine them?" with a phrase that names a tool: a command
    phrase_named = False
    if not multi_step:
        if lead_verb in VERB_TOOLS and not question:
            only = {VERB_TOOLS[lead_verb], CLARIFY}
        elif question:
            named = {tool for rx, tool in QUESTION_PHRASE_TOOLS if rx.search(text)}
            if len(named) == 1:
                return Route(force=named.pop())
        else:
            named = {tool for rx, tool in PHRASE_TOOLS if rx.search(text)}
            phrase_named = len(named) == 1
            if COMPONENT_CHANGE_RE.search(text):
                if not named:
                    return Route(force="ablate_gpt")
                named.add("ablate_gpt")
            if len(named) == 1:
                only = {named.pop(), CLARIFY}
            elif not named and HYPOTHETICAL_RE.search(text) and TRY_IT_RE.search(text):
                only = set(EXPERIMENT_TOOLS)
        if LORA_RE.search(text):
            exclude |= NOT_LORA_TOOLS if PYTHON_RE.search(text) else NOT_LORA_TOOLS | {"run_python"}
        if ABLATION_RE.search(text):
            exclude.add("train_gpt")
        if RESUME_RE.search(text):
            exclude |= {"train_gpt", "ablate_gpt", "train_tokenizer"}
    if LAB_VERB_RE.search(text) or (QUOTED_RE.search(text) and not question):
        exclude.add(ANSWER)
    if not COMPARE_RE.search(text):
        exclude.add("compare_tokenizers")
    if question or ((LAB_VERB_RE.search(text) or phrase_named) and CONCRETE_RE.search(text)):
        exclude.add(CLARIFY)  # questions get answers or tools; a command with values has enough to act on
    if only is not None and only - {CLARIFY} <= exclude:
        only = None  # the verb's own tool is excluded ("sample from the adapter"): no restriction
    elif only is not None:
        only -= exclude
        if len(only) == 1:  # concrete values: no question back, the tool itself
            return Route(force=next(iter(only)))
    return Route(exclude=exclude, only=only or None)


def step_route(messages) -> Route:
    """The checks of `pre_route` for the next step of a multi-step request, on that step's clause.

    Counts the successful tool results since the user's message to find the step; no refusal,
    answer or clarify (the request was checked as a whole when it arrived). Empty Route when the
    request has no clause for this step.
    """
    request, done = request_progress(messages)
    steps = split_steps(request)
    if done >= len(steps):
        return Route()
    step = pre_route(steps[done])
    if step.reply or step.force in (ANSWER, CLARIFY, "recall"):
        return Route(exclude=step.exclude)
    return Route(exclude=step.exclude, only=step.only, force=step.force)
