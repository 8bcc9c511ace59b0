"""How the API commands print: one JSON document for ``--json``, else tables for people.

Tables go through one Rich console so colours and widths behave the same everywhere; the
times people read are relative ("in 4m", "3h ago"), while ``--json`` keeps the API's RFC 3339
strings untouched.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def print_json(document: Any) -> None:
    """Print ``document`` as the only thing on stdout (indented, keys in the API's order)."""
    print(json.dumps(document, indent=2))


def console() -> Console:
    """The console for human output on stdout (Rich picks the width: terminal, $COLUMNS, 80)."""
    from rich.console import Console  # rich costs ~40 ms at start-up; only tables need it

    return Console(highlight=False)


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 string from the API as an aware datetime (None stays None)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def relative(value: str | None, now: datetime | None = None) -> str:
    """``in 4m`` / ``3h ago`` for an RFC 3339 string; ``-`` when there is none."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    magnitude = abs(seconds)
    if magnitude < 90:
        text = f"{magnitude:.0f}s"
    elif magnitude < 5400:
        text = f"{magnitude / 60:.0f}m"
    elif magnitude < 172_800:
        text = f"{magnitude / 3600:.0f}h"
    else:
        text = f"{magnitude // 86_400:.0f}d"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def minutes(value: str | None) -> str:
    """``2026-11-25 10:00Z``: an absolute time to the minute (JSON keeps the full value)."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
