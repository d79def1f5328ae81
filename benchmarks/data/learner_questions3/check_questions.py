#!/usr/bin/env python3
"""Validate learner_questions.jsonl (third set, lq3-*) against docs/, with the second set's validator
(same checks and totals: see ../learner_questions2/check_questions.py). Prints PASS or FAIL."""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("check2", HERE.parent / "learner_questions2" / "check_questions.py")
check2 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check2)

if __name__ == "__main__":
    sys.exit(check2.main(HERE))
