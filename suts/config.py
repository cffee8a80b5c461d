"""`--sut-config`: the TOML contract that describes any server to the suite."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailconform.specs.model import Role

_KEYS = {"name", "description", "inject", "submission", "domains", "mailbox", "password",
         "password_env", "roles", "provision", "mailboxes", "expands_aliases", "timeouts",
         "expectations", "db"}
_TIMEOUTS = {"connect", "reply", "quiescence", "settle"}
_INJECT_SCHEMES = ("smtp://", "lmtp://", "lmtp:/")
POOL_SIZE = 3
"""A fixed pool needs one mailbox per local user a scenario can have."""


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    reply: float = 30.0
    quiescence: float = 10.0
    settle: float = 0.3


@dataclass(frozen=True)
class SutConfig:
    name: str
    inject: str
    domains: tuple[str, ...]
    mailbox: str
    password: str | None = None
    submission: str | None = None
    roles: frozenset[Role] = frozenset({"mx"})
    provision: str | None = None
    mailboxes: tuple[str, ...] = ()
    expands_aliases: bool = False
    description: str = ""
    expectations: Path | None = None
    db: Path | None = None
    """Hypothesis example database directory for this SUT's runs."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    sink: str | None = None
    """Mailbox template ({address}) where the suite files what the SUT relays to remote domains."""

    @property
    def transport(self) -> str:
        return self.inject.partition(":")[0]

    def mailbox_url(self, address: str) -> str:
        local, _, domain = address.partition("@")
        return self.mailbox.format(local=local, domain=domain, address=address)


def load(path: Path, environ: dict[str, str]) -> SutConfig:
    """Read and check a SUT description; every mistake is named with the file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    try:
        return _checked(data, path, environ)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from None


def _checked(data: dict[str, Any], path: Path, environ: dict[str, str]) -> SutConfig:
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    missing = {"name", "inject", "domains", "mailbox"} - set(data)
    if missing:
        raise ValueError(f"missing required keys {sorted(missing)}")
    for key in ("inject", "submission"):
        if key in data and not str(data[key]).startswith(_INJECT_SCHEMES):
            raise ValueError(f"{key} = {data[key]!r}: expected smtp://HOST:PORT, lmtp://HOST:PORT"
                             " or lmtp:/path/to/socket")
    if "{" not in data["mailbox"]:
        raise ValueError("mailbox must be a template using {local}, {domain} or {address}")
    roles = frozenset(data.get("roles", ["mx"]))
    if not roles <= {"mx", "submission"} or ("submission" in roles) != ("submission" in data):
        raise ValueError("roles may be mx and submission; submission needs a submission URL")
    pool = tuple(data.get("mailboxes", ()))
    if pool and len(pool) < POOL_SIZE:
        raise ValueError(f"mailboxes: a fixed pool needs at least {POOL_SIZE} names")
    password = data.get("password")
    if "password_env" in data:
        password = environ.get(data["password_env"])
        if password is None:
            raise ValueError(f"password_env: ${data['password_env']} is not set")
    timeouts = data.get("timeouts", {})
    if set(timeouts) - _TIMEOUTS:
        raise ValueError(f"unknown [timeouts] keys {sorted(set(timeouts) - _TIMEOUTS)}")
    expectations = data.get("expectations")
    return SutConfig(
        name=str(data["name"]), inject=str(data["inject"]),
        domains=tuple(d.lower() for d in data["domains"]), mailbox=str(data["mailbox"]),
        password=password, submission=data.get("submission"), roles=roles,
        provision=data.get("provision"), mailboxes=pool,
        expands_aliases=bool(data.get("expands_aliases", False)),
        description=str(data.get("description", "")),
        expectations=(path.parent / expectations) if expectations else None,
        db=(path.parent / data["db"]) if data.get("db") else None,
        timeouts=Timeouts(**{k: float(v) for k, v in timeouts.items()}))
