"""Where the commands print: one JSON document for ``--json``, else one Rich console.

Tables go through one console so colours and widths behave the same everywhere. :func:`show`
prints an API result either way; what each looks like for people is ``_render.py``'s.
"""

from __future__ import annotations

import json
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


def show(result: Any, *, as_json: bool) -> None:
    """Print an API result: its ``document`` as JSON, or its renderer's output for people.

    The renderers (``_render.py``) load here, when a command has a result to show, not with the
    CLI.
    """
    if as_json:
        print_json(result.document)
        return
    from omni_secrets.cli._render import human

    human(result)
