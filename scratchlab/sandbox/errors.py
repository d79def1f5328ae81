"""The sandbox's errors and its one warning (imported by every sandbox module, importing none).

- `SandboxUnavailable`: bubblewrap or user namespaces are missing; says how to install or enable them.
- `SandboxConfigError`: a limit or mount is out of range; names the value and the range.
- `SandboxError`: set-up or internal failure (never the user code's fault).
- `UnsafeSandboxWarning`: code runs without isolation; shown every time, never deduplicated.
"""

from __future__ import annotations

import warnings


class SandboxError(RuntimeError):
    """The sandbox could not be set up or failed internally (not the user code's fault)."""


class SandboxUnavailable(SandboxError):
    """bubblewrap or user namespaces are missing; the message says how to fix it."""


class UnsafeSandboxWarning(UserWarning):
    """Code is about to run without isolation (`unsafe_no_sandbox=True`). Always shown, never deduplicated."""


warnings.simplefilter("always", UnsafeSandboxWarning)


class SandboxConfigError(ValueError):
    """A limit or mount is invalid; the message names the value and the allowed range."""
