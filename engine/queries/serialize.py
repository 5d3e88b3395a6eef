"""One way a read model becomes JSON (the API, the CLI's --json): instants as Asia/Shanghai ISO 8601 to
the second — the format the JSON has always had (`2026-11-09T16:00:00+08:00`) — tuples as lists, nested
read models as objects, in field order. Why one serializer and not a `to_json` written per class: the
shapes the API and the CLI print must not drift apart from the dataclasses they come from."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ..clock import local


def iso(value: datetime | None) -> str | None:
    """An instant as the JSON shows it: Asia/Shanghai, to the second."""
    return local(value).isoformat(timespec="seconds") if value is not None else None


def to_json(value: Any) -> Any:
    """A JSON-ready value of a read model (or of anything a read model holds)."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


class JsonModel:
    """Mixin of the read models: `to_json()` through the one serializer."""

    def to_json(self) -> Any:
        return to_json(self)
