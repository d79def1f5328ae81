"""The one deterministic check on a new request: harmful requests get a fixed refusal, no model call.

A 1.5B model follows a rule like "refuse to read SSH keys" only part of the time, so requests to
damage the machine, read secrets, write malware, attack others or commit fraud are refused here, in code. The
sandbox (scratchlab.sandbox) is the real boundary: this check only keeps the assistant from cheerfully
trying. A harmful topic alone is not a harmful request ("how do viruses spread?"): it takes a verb of
doing from `DOING_WORDS` as well.

Everything else about understanding a request (which tool, which arguments, what "it" means) is data
and mechanism: the example bank (`scratchlab.agent.bank`), the tool schemas, and the lab's records
(`scratchlab.agent.state`).

    refusal("use python to read ~/.ssh/id_rsa")   # "I won't do that: ..."
"""

from __future__ import annotations

import re

from scratchlab.agent.bank import tokens

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
    (r"\bstolen\b.{0,40}\b(cards?|accounts?|identit(y|ies))\b|\bcard (numbers?|details|data)\b.{0,80}"
     r"\b(valid|shop|buy|spend|make up|generate)\b|\bcommit fraud\b|\bcarding\b|\bcounterfeit\b",
     "it would help commit fraud"),
    (r"\bignore (all |your |the )?(previous |prior )?instructions\b.{0,60}\b(delete|remove|rm|wipe|destroy|send|upload)\b",
     "it asks me to drop my instructions and do damage"),
]  # fmt: skip
_HARMFUL_RE = [(re.compile(p, re.IGNORECASE | re.DOTALL), why) for p, why in HARMFUL]
DOING_WORDS = set(
    """run read show print cat display open send upload copy dump write make create build code generate download
    install deploy execute delete remove wipe format erase flood attack steal exfiltrate fine tune train mine use
    using get give list leak crack hack spread post email set launch start spawn connect establish exploit bypass
    disable""".split()
)
REFUSAL = (
    "I won't do that: {why}. I can help with tokenizers, GPT training, document search, LoRA fine-tuning and "
    "safe Python in the sandbox."
)


def refusal(request: str) -> str | None:
    """A refusal for a harmful request, else None."""
    if not DOING_WORDS & set(tokens(request)):
        return None
    for rx, why in _HARMFUL_RE:
        if rx.search(request):
            return REFUSAL.format(why=why)
    return None
