"""Python modules mounted read-only into the sandbox (at /lab/lib) for code that `run_python` runs."""
