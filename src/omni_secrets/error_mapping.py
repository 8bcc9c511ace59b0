"""How each error category answers at the edges: one table, read by the API and by the CLI.

Domain errors carry neither an HTTP status nor an exit code. :data:`ERROR_TABLE` gives each
category of ``domain/errors.py`` both; ``api/errors.py`` answers with the status (and generates
each route's OpenAPI ``responses=`` from it), the CLI exits with the code, whether the error was
raised locally or came back from the API as an HTTP answer (:func:`exit_code_for_http_status`).

Exit codes: 0 success; 1 a check failed, something was not found or conflicts with the current
state, or the API refused the caller; 2 bad usage, invalid input or a rejected configuration;
3 a dependency (GSM, the database, ApeX, the API itself) is unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass

from omni_secrets.domain import errors

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

INTERNAL_STATUS = 500


@dataclass(frozen=True, slots=True)
class ErrorMapping:
    """One category's answers: its HTTP status (None: never reaches HTTP) and CLI exit code."""

    category: type[errors.OmniSecretsError]
    http_status: int | None
    exit_code: int


# Most specific first: the first row whose category matches wins.
ERROR_TABLE: tuple[ErrorMapping, ...] = (
    ErrorMapping(errors.ApexUpstreamError, 502, EXIT_UNAVAILABLE),
    ErrorMapping(errors.Unavailable, 503, EXIT_UNAVAILABLE),
    ErrorMapping(errors.NotFound, 404, EXIT_FAILED),
    ErrorMapping(errors.InvalidInput, 422, EXIT_USAGE),
    ErrorMapping(errors.Conflict, 409, EXIT_FAILED),
    # The environment guard stops the process before it serves anything.
    ErrorMapping(errors.ConfigurationRejected, None, EXIT_USAGE),
)

# Answers of the API that no domain error produces: authentication and FastAPI's own checks.
_EXIT_CODE_BY_OTHER_STATUS = {401: EXIT_FAILED, 403: EXIT_FAILED}


def mapping_for(error_type: type[errors.OmniSecretsError]) -> ErrorMapping | None:
    """The table row of ``error_type`` (None: an error outside every category)."""
    for row in ERROR_TABLE:
        if issubclass(error_type, row.category):
            return row
    return None


def http_status_for(error_type: type[errors.OmniSecretsError]) -> int:
    """The HTTP status an error of ``error_type`` is answered with (500 when it has none)."""
    row = mapping_for(error_type)
    return row.http_status if row is not None and row.http_status is not None else INTERNAL_STATUS


def exit_code_for(error_type: type[errors.OmniSecretsError]) -> int:
    """The CLI exit code for a local error of ``error_type``."""
    row = mapping_for(error_type)
    return row.exit_code if row is not None else EXIT_FAILED


def exit_code_for_http_status(status: int) -> int:
    """The CLI exit code for an API answer with ``status`` (>= 400): the same as the category
    the API maps to that status; 401/403 are 1; any other 5xx is 3 and any other 4xx is 2."""
    for row in ERROR_TABLE:
        if row.http_status == status:
            return row.exit_code
    if status in _EXIT_CODE_BY_OTHER_STATUS:
        return _EXIT_CODE_BY_OTHER_STATUS[status]
    return EXIT_UNAVAILABLE if status >= INTERNAL_STATUS else EXIT_USAGE
