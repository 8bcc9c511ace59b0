"""Help pages that read like an operator tool's, not like Python.

Typer labels every value with its Python annotation (``--scope <list[str]>``, ``ID <str>``),
writes required arguments as ``{ID}`` in usage lines, and its Rich formatter keeps a docstring's
hard line breaks. :func:`tidy_help` walks the finished
Click command tree once: options show their metavar (``--scope SCOPE``; flags show nothing),
arguments only their name, and help is rendered by Click's plain formatter, which re-wraps
paragraphs to the terminal width. A group's list of commands shows each one's first sentence
whole (wrapped), never Click's 45-character cut ending in ``...``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from typer import core as typer_core
from typer._click import core as click_core  # typer vendors click


def tidy_help(command: click_core.Command) -> None:
    """Apply the help conventions above to ``command`` and every subcommand, in place."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    if command.short_help is None and command.help:
        command.short_help = first_sentence(command.help)
    for param in command.params:
        _tidy_param(param)
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def _tidy_param(param: click_core.Parameter) -> None:
    if isinstance(param, typer_core.TyperOption) and (param.is_flag or param.count):
        label: str | None = None
    elif isinstance(param, typer_core.TyperArgument):
        label = None  # the argument's name (its metavar) is shown already
        # Usage lines say `revoke OVERRIDE_ID`, not Typer's `{OVERRIDE_ID}`: bare means required.
        usage = param.display_name_raw if param.required else f"[{param.display_name_raw}]"
        setattr(param, "_usage_display_name", lambda: usage)  # noqa: B010
    else:
        if param.metavar is None:
            param.metavar = (param.name or "value").upper()
        label = param.metavar

    # Typer calls display_type_rich(ctx=...) by keyword, so the name stays though it is unused.
    def display(ctx: Any) -> str | None:  # noqa: ARG001
        return label

    # Typer asks the parameter instance for its type label; answer with the metavar instead.
    setattr(param, "display_type_rich", display)  # noqa: B010


# A sentence ends at a full stop followed by a capital or a backquote ("e.g. api_key" does not).
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z`])")


def first_sentence(text: str) -> str:
    """The first sentence of ``text``'s first paragraph, on one line."""
    paragraph = " ".join(inspect.cleandoc(text).split("\n\n", 1)[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph if end is None else paragraph[: end.start() + 1]
