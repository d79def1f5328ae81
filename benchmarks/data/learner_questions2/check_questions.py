#!/usr/bin/env python3
"""Validate learner_questions.jsonl against docs/.

Checks: every line is valid JSON with exactly the keys id, doc, question,
evidence, type; ids are unique; the type is one of the allowed set; the doc
exists; every evidence string is 20-200 characters and occurs byte for byte
(UTF-8) in its doc (a WARN line if it occurs more than once); and the totals
meet the brief (>= 60 questions, >= 20 code, >= 20 paraphrase).
Prints counts per type and per doc, then PASS or FAIL (exit status 1 on FAIL).
"""
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = {"id", "doc", "question", "evidence", "type"}
TYPES = {"code", "paraphrase", "number", "table", "procedure", "definition"}
MIN_TOTAL, MIN_CODE, MIN_PARA = 60, 20, 20
MIN_EV, MAX_EV = 20, 200


def main(here: Path = HERE):
    """Validate `here`/learner_questions.jsonl against `here`/docs (set 3 calls this with its folder)."""
    errors, warns = [], []
    ids = set()
    per_type, per_doc = Counter(), Counter()
    docs = {}
    lines = (here / "learner_questions.jsonl").read_text(encoding="utf-8").splitlines()
    n = 0
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {ln}: invalid JSON ({e})")
            continue
        n += 1
        if not isinstance(row, dict) or set(row) != KEYS:
            errors.append(f"line {ln}: keys {sorted(row) if isinstance(row, dict) else type(row)} != {sorted(KEYS)}")
            continue
        qid = row["id"]
        if qid in ids:
            errors.append(f"{qid}: duplicate id")
        ids.add(qid)
        if row["type"] not in TYPES:
            errors.append(f"{qid}: bad type {row['type']!r}")
        if not str(row["question"]).strip():
            errors.append(f"{qid}: empty question")
        per_type[row["type"]] += 1
        per_doc[row["doc"]] += 1
        path = here / "docs" / row["doc"]
        if row["doc"] not in docs:
            docs[row["doc"]] = path.read_bytes() if path.is_file() else None
        text = docs[row["doc"]]
        if text is None:
            errors.append(f"{qid}: doc {row['doc']} not found")
            continue
        ev = row["evidence"]
        if not (MIN_EV <= len(ev) <= MAX_EV):
            errors.append(f"{qid}: evidence length {len(ev)} not in [{MIN_EV}, {MAX_EV}]")
        k = text.count(ev.encode("utf-8"))
        if k == 0:
            errors.append(f"{qid}: evidence not found in {row['doc']}")
        elif k > 1:
            warns.append(f"WARN {qid}: evidence occurs {k}x in {row['doc']}")
    if n < MIN_TOTAL:
        errors.append(f"only {n} questions (< {MIN_TOTAL})")
    if per_type["code"] < MIN_CODE:
        errors.append(f"only {per_type['code']} code questions (< {MIN_CODE})")
    if per_type["paraphrase"] < MIN_PARA:
        errors.append(f"only {per_type['paraphrase']} paraphrase questions (< {MIN_PARA})")

    print(f"questions: {n}")
    print(f"per type: {dict(sorted(per_type.items()))}")
    print(f"per doc:  {dict(sorted(per_doc.items()))}")
    for w in warns:
        print(w)
    for e in errors:
        print(f"ERROR {e}")
    print("FAIL" if errors else "PASS")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
