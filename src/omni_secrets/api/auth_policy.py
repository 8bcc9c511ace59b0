"""The auth policy: scopes granted to identities, on top of the scopes a token carries.

Contract section 14. ``OMNI_AUTH_POLICY_FILE`` holds YAML or JSON::

    grants:
      - principal: email:ops@example.com
        scopes: [omni-secrets:read]
      - principal: group:omni-operators
        scopes: [omni-secrets:read, omni-secrets:rotate]

A principal is ``sub:VALUE`` (the token's ``sub``), ``email:VALUE`` (the token's ``email``, only
when ``email_verified`` is true; compared after ASCII lower-casing only, so ``A-Z`` match
``a-z`` and nothing else folds: ``ops@straße.example`` is not ``ops@strasse.example``) or
``group:VALUE`` (a member of the token's ``groups`` array). A caller's scopes are the union of
its token's scopes and of every grant whose principal matches it.

The file is parsed strictly (:func:`parse_policy`): an unknown scope, a principal without a known
prefix, a duplicate principal, an unknown key, a key repeated within one mapping (YAML and JSON
would silently keep the last one) or invalid YAML/JSON is refused with one line naming the file
and the entry. :class:`AuthPolicySource` holds the policy in force and reloads it
(``SIGHUP``); a bad reload keeps the policy in force and logs why.
"""

from __future__ import annotations

import functools
import json
import string
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from omni_secrets.api.auth import Principal, Scope, TokenVerifier
from omni_secrets.domain.errors import AuthPolicyInvalid

log = structlog.get_logger("omni_secrets.auth_policy")

PRINCIPAL_KINDS = ("sub", "email", "group")
_ENTRY_KEYS = frozenset({"principal", "scopes"})
_KNOWN_SCOPES = frozenset(s.value for s in Scope)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_key(address: str) -> str:
    """``address`` as e-mail principals are compared: ASCII ``A-Z`` lowered, nothing else.

    Neither ``str.casefold`` (``ß`` → ``ss``) nor ``str.lower`` (U+212A KELVIN SIGN → ``k``) is
    used: either would let an address the identity provider treats as distinct match a grant.
    """
    return address.translate(_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class Grant:
    """``scopes`` granted to ``principal`` (``kind:value``, as written in the file)."""

    principal: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """Grants indexed by principal kind, so a lookup costs a few dict probes, not a scan."""

    grants: tuple[Grant, ...] = ()
    _by_sub: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _by_email: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _by_group: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, grants: tuple[Grant, ...]) -> AuthPolicy:
        """Index ``grants`` (already validated: one entry per principal)."""
        index: dict[str, dict[str, frozenset[str]]] = {kind: {} for kind in PRINCIPAL_KINDS}
        for grant in grants:
            kind, value = _split_principal(grant.principal)
            key = email_key(value) if kind == "email" else value
            index[kind][key] = grant.scopes
        return cls(grants, index["sub"], index["email"], index["group"])

    def scopes_for(self, principal: Principal) -> frozenset[str]:
        """Every scope the policy grants to ``principal`` (empty when nothing matches)."""
        granted: frozenset[str] = self._by_sub.get(principal.subject, frozenset())
        if principal.email is not None and self._by_email:
            granted = granted | self._by_email.get(email_key(principal.email), frozenset())
        if principal.groups and self._by_group:
            for group in principal.groups:
                scopes = self._by_group.get(group)
                if scopes is not None:
                    granted = granted | scopes
        return granted


EMPTY_POLICY = AuthPolicy()


def parse_policy(document: Any, *, source: str) -> AuthPolicy:
    """Validate a decoded policy document.

    Args:
        document: the decoded YAML/JSON.
        source: the file name, for messages.

    Raises:
        AuthPolicyInvalid: the first problem found, naming ``source`` and the entry.
    """
    if not isinstance(document, dict):
        raise AuthPolicyInvalid(source, "must be a mapping with a 'grants' list")
    unknown = sorted(str(k) for k in document if k != "grants")
    if unknown:
        raise AuthPolicyInvalid(source, f"unknown top-level key {unknown[0]!r} (only 'grants')")
    entries = document.get("grants")
    if not isinstance(entries, list):
        raise AuthPolicyInvalid(source, "'grants' must be a list")
    grants: list[Grant] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        grant = _parse_entry(entry, index=index, source=source)
        kind, value = _split_principal(grant.principal)
        identity = f"{kind}:{email_key(value) if kind == 'email' else value}"
        if identity in seen:
            raise AuthPolicyInvalid(
                source,
                f"grants[{index}]: duplicate principal {grant.principal!r} "
                f"(already granted in grants[{seen[identity]}])",
            )
        seen[identity] = index
        grants.append(grant)
    return AuthPolicy.of(tuple(grants))


def _parse_entry(entry: Any, *, index: int, source: str) -> Grant:
    where = f"grants[{index}]"
    if not isinstance(entry, dict):
        raise AuthPolicyInvalid(source, f"{where}: must be a mapping with principal and scopes")
    principal = entry.get("principal")
    if isinstance(principal, str) and principal:
        where = f"{where} ({principal!r})"
    unknown = sorted(str(k) for k in entry if k not in _ENTRY_KEYS)
    if unknown:
        raise AuthPolicyInvalid(
            source, f"{where}: unknown key {unknown[0]!r} (only principal and scopes)"
        )
    if not isinstance(principal, str) or not principal:
        raise AuthPolicyInvalid(source, f"{where}: 'principal' must be a non-empty string")
    kind, _, value = principal.partition(":")
    if kind not in PRINCIPAL_KINDS or not value.strip() or value != value.strip():
        raise AuthPolicyInvalid(
            source,
            f"{where}: principal must be sub:VALUE, email:VALUE or group:VALUE",
        )
    scopes = entry.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        raise AuthPolicyInvalid(source, f"{where}: 'scopes' must be a non-empty list")
    for scope in scopes:
        if not isinstance(scope, str) or scope not in _KNOWN_SCOPES:
            raise AuthPolicyInvalid(
                source,
                f"{where}: unknown scope {scope!r} (known: {', '.join(sorted(_KNOWN_SCOPES))})",
            )
    if len(set(scopes)) != len(scopes):
        raise AuthPolicyInvalid(source, f"{where}: a scope is listed twice")
    return Grant(principal=principal, scopes=frozenset(scopes))


def _split_principal(principal: str) -> tuple[str, str]:
    kind, _, value = principal.partition(":")
    return kind, value


def load_policy_file(path: str) -> AuthPolicy:
    """Read and validate the policy file at ``path`` (``.json`` as JSON, anything else as YAML).

    Raises:
        AuthPolicyInvalid: the file cannot be read or decoded, or an entry is invalid.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthPolicyInvalid(
            path, f"cannot be read: {exc.strerror or type(exc).__name__}"
        ) from None
    except UnicodeDecodeError:
        raise AuthPolicyInvalid(path, "is not UTF-8 text") from None
    return parse_policy(_decode(text, path), source=path)


def _decode(text: str, path: str) -> Any:
    if path.endswith(".json"):
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            raise AuthPolicyInvalid(
                path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except _DuplicateKey as exc:
            raise AuthPolicyInvalid(path, f"invalid JSON: duplicate key {exc.key!r}") from None
    # PyYAML loads only when a YAML policy file is read (most deployments have none).
    import yaml

    try:
        return yaml.load(text, Loader=_strict_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise AuthPolicyInvalid(path, f"invalid YAML{at}: {problem}") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(key)
        document[key] = value
    return document


@functools.cache
def _strict_yaml_loader() -> type[Any]:
    """``yaml.SafeLoader`` that refuses a key repeated within one mapping (it keeps the last)."""
    import yaml

    class StrictSafeLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return loader.construct_mapping(node)

    StrictSafeLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
    )
    return StrictSafeLoader


class AuthPolicySource:
    """The policy in force, and its reload.

    Args:
        path: the policy file, or None when no policy is configured (tokens' own scopes only).
    """

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._policy = EMPTY_POLICY if path is None else load_policy_file(path)

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def policy(self) -> AuthPolicy:
        return self._policy

    def reload(self) -> bool:
        """Re-read the file; on any problem keep the policy in force and log why.

        Returns:
            True when the new policy is in force.
        """
        if self._path is None:
            log.info("auth_policy.reload_skipped", reason="OMNI_AUTH_POLICY_FILE is not set")
            return False
        try:
            policy = load_policy_file(self._path)
        except AuthPolicyInvalid as exc:
            log.error(
                "auth_policy.reload_rejected",
                path=self._path,
                reason=exc.problem,
                grants_in_force=len(self._policy.grants),
            )
            return False
        self._policy = policy
        log.info("auth_policy.reloaded", path=self._path, grants=len(policy.grants))
        return True


class PolicyVerifier:
    """A :class:`TokenVerifier` that adds the policy's grants to the verified principal.

    The grants are applied after verification, on every call, so a reload takes effect at the
    next request whatever sits inside ``inner`` (a verified-token cache included).
    """

    def __init__(self, inner: TokenVerifier, source: AuthPolicySource) -> None:
        self._inner = inner
        self._source = source

    def __repr__(self) -> str:
        return f"PolicyVerifier({self._inner!r}, path={self._source.path!r})"

    async def verify(self, token: str) -> Principal:
        principal = await self._inner.verify(token)
        return principal.with_scopes(self._source.policy.scopes_for(principal))
