"""`scratchlab serve` on the fake lab of `lab_fakes` (rule model + `slow_train`), for the attach tests.

python tests/serve_fakes.py HOME      # serves until 10 idle minutes pass or SIGTERM
"""

from __future__ import annotations

import sys

from lab_fakes import child_env, fake_session_class

from scratchlab.server.ask_server import serve

FAKE_MODEL = "fake rules"  # the model spec the fake REPL (`lab_fakes.repl_main`) asks for


def main(home: str) -> None:
    child_env()  # the job children find lab_fakes too
    lab = fake_session_class(home)()
    try:
        serve(lab, FAKE_MODEL, idle_timeout_s=600)
    finally:
        lab.close()


if __name__ == "__main__":
    main(sys.argv[1])
