"""The options every API command takes, declared once: ``@api_command(scope)``.

A command that calls the API names one parameter ``api: ApiOptions``; :func:`api_command`
replaces it with ``--url``, ``--token``, ``--token-file``, ``--insecure`` and
``--id-token-audience`` at that place in the signature, and adds ``--json`` after the command's
own options, so each ``--help`` lists them where it always has. The command receives them as one
:class:`ApiOptions` and resolves them only when it connects (:meth:`ApiOptions.connect`): local
checks (a TTL, a secret type) still fail before a missing token does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omni_secrets.api.scopes import Scope
from omni_secrets.cli._bearer import IdTokenAudienceOption
from omni_secrets.cli._target import (
    InsecureOption,
    JsonOption,
    TokenFileOption,
    TokenOption,
    UrlOption,
    resolve_target,
)

if TYPE_CHECKING:
    from omni_secrets.cli.client import ApiClient

_MARKER = "api"
# (parameter name, annotation, default) in --help order.
_CONNECTION_PARAMETERS: tuple[tuple[str, Any, Any], ...] = (
    ("url", UrlOption, None),
    ("token", TokenOption, None),
    ("token_file", TokenFileOption, None),
    ("insecure", InsecureOption, False),
    ("id_token_audience", IdTokenAudienceOption, None),
)
_JSON_PARAMETER = ("as_json", JsonOption, False)


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """The common options as given on the command line (nothing resolved yet)."""

    scope: Scope
    url: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    insecure: bool = False
    id_token_audience: str | None = None
    as_json: bool = False

    def connect(self, environ: Mapping[str, str] | None = None) -> ApiClient:
        """A client for the API these options (else the environment) name; exit 2 when they
        name none or name it unsafely (see :func:`~omni_secrets.cli._target.resolve_target`)."""
        from omni_secrets.cli.client import ApiClient

        target = resolve_target(
            url=self.url,
            token=self.token,
            token_file=self.token_file,
            insecure=self.insecure,
            scope=self.scope,
            id_token_audience=self.id_token_audience,
            environ=environ,
        )
        return ApiClient(target.url, target.token, token_source=target.token_source)

    def under(self, parent: ApiOptions | None) -> ApiOptions:
        """These options, each one not given taken from ``parent`` (a group's, given before the
        subcommand: ``refresh --url URL status ID``). ``--json`` is never inherited."""
        if parent is None:
            return self
        return replace(
            self,
            url=self.url if self.url is not None else parent.url,
            token=self.token if self.token is not None else parent.token,
            token_file=self.token_file if self.token_file is not None else parent.token_file,
            insecure=self.insecure or parent.insecure,
            id_token_audience=self.id_token_audience
            if self.id_token_audience is not None
            else parent.id_token_audience,
        )


def api_command(scope: Scope) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare a command that calls the API with a token for ``scope`` (see the module doc)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(command, eval_str=True).parameters
        if _MARKER not in own:
            raise TypeError(f"{command.__name__} has no {_MARKER!r} parameter for the API options")
        parameters: list[inspect.Parameter] = []
        for name, parameter in own.items():
            if name == _MARKER:
                parameters.extend(_option(*spec) for spec in _CONNECTION_PARAMETERS)
            else:
                parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        parameters.append(_option(*_JSON_PARAMETER))

        def run(**given: Any) -> None:
            options = {name: given.pop(name) for name, _, _ in _CONNECTION_PARAMETERS}
            api = ApiOptions(scope, **options, as_json=given.pop(_JSON_PARAMETER[0]))
            command(**given, **{_MARKER: api})

        # Typer reads the signature (with the options) and the docstring (the help) from here.
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        run.__doc__ = command.__doc__
        run.__name__ = command.__name__
        run.__qualname__ = command.__qualname__
        run.__module__ = command.__module__
        return run

    return decorate


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )
