"""The events of a served turn on the wire: one JSON object per line (NDJSON), standard library only.

`LabSession.stream` yields (kind, data) pairs; `encode` turns each into {"kind", "data"} with plain JSON
data, and the REPL's `scratchlab.server.remote.RemoteLab` turns them back into what `TurnRunner`
renders:

    token        str                                   a piece of the streamed answer
    tool_call    {"name", "args", "id"}
    tool_result  {"content", "tool_call_id", "name", "status"}   (a ToolMessage)
    message      {"content"}                           (the final AIMessage)
    interrupt    the confirmation payload              (the stream then ends: answer with a resume turn)
and one closing line: end | cancelled {"jobs"} | too_long {"detail"} | error {"detail"}.
Empty lines are heartbeats (they let the server notice a client that hung up).
"""

from __future__ import annotations

import json
from typing import Any

END_KINDS = frozenset({"end", "cancelled", "too_long", "error"})


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (anything JSON cannot hold becomes its `str`)."""
    return json.loads(json.dumps(value, default=str))


def encode(kind: str, data: Any) -> dict[str, Any]:
    """One `LabSession.stream` event as {"kind", "data"} with JSON data."""
    if kind == "tool_result":
        data = {"content": str(data.content), "tool_call_id": data.tool_call_id, "name": data.name,
                "status": getattr(data, "status", "success")}  # fmt: skip
    elif kind == "message":
        data = {"content": str(data.content)}
    return {"kind": kind, "data": jsonable(data)}


def line(event: dict[str, Any]) -> bytes:
    return (json.dumps(event, ensure_ascii=False) + "\n").encode()
