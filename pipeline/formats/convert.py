"""What every converting format shares: the error, JSON decoding and ISO times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson


class ConvertError(ValueError):
    """A source line that yields no event; the message says why."""


def load_object(line: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ConvertError(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ConvertError("not a JSON object")
    return obj


def iso_epoch(value: str) -> float:
    """Epoch seconds of an ISO 8601 time (``Z`` accepted)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
