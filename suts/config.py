"""`--sut-config`: the TOML contract that describes any server to the suite.

The whole file is checked before any example runs; every mistake is one line
naming the file and the key.
"""

from __future__ import annotations

import re
import shlex
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from mailconform.specs.model import Role
from mailconform.suts.sink import sink_port
from mailconform.suts.wire import Login, Retry, open_mailbox
from mailconform.suts.wire.client import Endpoint

_KEYS = {"name", "description", "inject", "submission", "submission_auth", "domains", "mailbox",
         "password", "password_env", "roles", "provision", "cleanup", "idle", "delivery", "sink",
         "mailboxes", "expands_aliases", "timeouts", "retry", "expectations",
         "db"}
_TIMEOUTS = {"connect", "reply", "quiescence", "settle"}
_RETRY = {"attempts", "delay"}
_AUTH = {"user", "password", "password_env"}
_PLACEHOLDERS = {"local", "domain", "address"}
_BATCH = {"locals", "addresses"}
"""In `provision` and `cleanup`: every new mailbox of an example at once, one command per example."""
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
POOL_SIZE = 3
"""A fixed pool needs one mailbox per local user a scenario can have."""

Delivery = Literal["queued", "synchronous"]


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
    submission_login: Login | None = None
    roles: frozenset[Role] = frozenset({"mx"})
    provision: str | None = None
    cleanup: str | None = None
    """Command template run for each mailbox an example created, once the example is done."""
    idle: str | None = None
    """Command that exits 0 once the SUT holds no mail still to deliver (e.g. its queue is empty)."""
    delivery: Delivery = "queued"
    """"synchronous": the SUT files a copy before it answers the final dot (LMTP stores)."""
    mailboxes: tuple[str, ...] = ()
    expands_aliases: bool = False
    description: str = ""
    expectations: Path | None = None
    db: Path | None = None
    """Hypothesis example database directory for this SUT's runs."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: Retry = field(default_factory=Retry)
    sink: str | None = None
    """Where the suite's sink for every other domain listens (smtp://127.0.0.1:PORT); None: any free port."""
    directory: Path = Path(".")
    """Commands run here: the TOML file's directory."""

    @property
    def transport(self) -> str:
        return self.inject.partition(":")[0]

    def mailbox_url(self, address: str) -> str:
        return fill(self.mailbox, address)


def fill(template: str, address: str) -> str:
    local, _, domain = address.partition("@")
    return template.format(local=local, domain=domain, address=address)


def shell_commands(template: str, addresses: Sequence[str]) -> list[tuple[str, Sequence[str]]]:
    """A `provision` or `cleanup` command line, shell-quoted, with the addresses it covers: one per
    address, or one for all of them when the template names {locals} or {addresses}."""
    def quoted(addresses: Sequence[str]) -> dict[str, str]:
        local, _, domain = addresses[0].partition("@")
        return {"local": shlex.quote(local), "domain": shlex.quote(domain),
                "address": shlex.quote(addresses[0]),
                "locals": " ".join(shlex.quote(a.partition("@")[0]) for a in addresses),
                "addresses": " ".join(map(shlex.quote, addresses))}
    if not addresses:
        return []
    if _placeholders(template) & _BATCH:
        return [(template.format(**quoted(addresses)), addresses)]
    return [(template.format(**quoted([address])), [address]) for address in addresses]


def load(path: Path, environ: Mapping[str, str]) -> SutConfig:
    """Read and check a SUT description; every mistake is named with the file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    try:
        unknown = set(data) - _KEYS
        if unknown:  # before ${VAR} expansion: a misspelt key says so, not that its variable is unset
            raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(_KEYS)}")
        return _checked(_expanded(data, environ, ""), path.resolve().parent, environ)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from None


def _expanded(value: Any, environ: Mapping[str, str], key: str) -> Any:
    """`value` with every ${VAR} replaced from the environment."""
    if isinstance(value, dict):
        return {k: _expanded(v, environ, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_expanded(v, environ, key) for v in value]
    if isinstance(value, str):
        def variable(found: re.Match[str]) -> str:
            name = found.group(1)
            if name not in environ:
                raise ValueError(f"{key}: ${{{name}}} is not set in the environment")
            return environ[name]
        return _VARIABLE.sub(variable, value)
    return value


def _checked(data: dict[str, Any], directory: Path, environ: Mapping[str, str]) -> SutConfig:
    missing = {"name", "inject", "domains", "mailbox"} - set(data)
    if missing:
        raise ValueError(f"missing required keys {sorted(missing)}")
    for key in ("inject", "submission"):
        if key in data:
            _endpoint(key, _text(data, key))
    roles = frozenset(cast(list[Role], _texts(data, "roles") or ["mx"]))
    if not roles <= {"mx", "submission"} or ("submission" in roles) != ("submission" in data):
        raise ValueError("roles may be mx and submission; submission needs a submission URL")
    pool = _texts(data, "mailboxes")
    if pool and len(pool) < POOL_SIZE:
        raise ValueError(f"mailboxes: a fixed pool needs at least {POOL_SIZE} names")
    domains = _texts(data, "domains")
    if not domains:
        raise ValueError('domains: expected a list of at least one domain, e.g. ["isp.test"]')
    password = _secret(data, "", environ)
    mailbox = _text(data, "mailbox")
    _template("mailbox", mailbox, required=True)
    _mailbox_reader(mailbox, password, domains[0])
    for key in ("provision", "cleanup"):
        if key in data:
            _template(key, _text(data, key), required=False, allowed=_PLACEHOLDERS | _BATCH)
    if "idle" in data:
        _template("idle", _text(data, "idle"), required=False, allowed=set())
    delivery = data.get("delivery", "queued")
    if delivery not in ("queued", "synchronous"):
        raise ValueError(f'delivery = {delivery!r}: expected "queued" (the default: the server may'
                         ' file after it answers) or "synchronous" (it files before it answers)')
    if "sink" in data:
        sink_port(_text(data, "sink"))
    expectations = data.get("expectations")
    return SutConfig(
        name=_text(data, "name"), inject=_text(data, "inject"),
        domains=tuple(d.lower() for d in domains), mailbox=mailbox, password=password,
        submission=data.get("submission"), submission_login=_login(data, environ), roles=roles,
        provision=data.get("provision"), cleanup=data.get("cleanup"), idle=data.get("idle"),
        delivery=delivery, mailboxes=tuple(pool),
        expands_aliases=_flag(data, "expands_aliases"),
        description=str(data.get("description", "")),
        expectations=(directory / _text(data, "expectations")) if expectations else None,
        db=(directory / _text(data, "db")) if "db" in data else None,
        timeouts=Timeouts(**_numbers(data, "timeouts", _TIMEOUTS)),
        retry=_retry(data), sink=data.get("sink"), directory=directory)


def _text(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} = {value!r}: expected a non-empty string")
    return value


def _texts(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key} = {value!r}: expected a list of strings, e.g. {key} = [\"...\"]")
    return value


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} = {value!r}: expected true or false")
    return value


def _table(data: dict[str, Any], key: str, known: set[str]) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ValueError(f"{key}: expected a table ([{key}] or {key} = {{...}})")
    if set(table) - known:
        raise ValueError(f"unknown [{key}] keys {sorted(set(table) - known)}; known: {sorted(known)}")
    return table


def _numbers(data: dict[str, Any], key: str, known: set[str]) -> dict[str, float]:
    table = _table(data, key, known)
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"[{key}] {name} = {value!r}: expected a number of seconds, 0 or more")
    return {name: float(value) for name, value in table.items()}


def _retry(data: dict[str, Any]) -> Retry:
    table = _table(data, "retry", _RETRY)
    attempts = table.get("attempts", Retry.attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"[retry] attempts = {attempts!r}: expected a whole number, 1 or more")
    delay = _numbers({"retry": {k: v for k, v in table.items() if k == "delay"}}, "retry", {"delay"})
    return Retry(attempts, delay.get("delay", Retry.delay))


def _secret(table: dict[str, Any], where: str, environ: Mapping[str, str]) -> str | None:
    """`password`, or the value of the variable `password_env` names."""
    if "password" in table and "password_env" in table:
        raise ValueError(f"{where}: give password or password_env, not both")
    if "password_env" not in table:
        return _text(table, "password") if "password" in table else None
    name = _text(table, "password_env")
    if name not in environ:
        raise ValueError(f"{where}password_env: ${name} is not set")
    return environ[name]


def _login(data: dict[str, Any], environ: Mapping[str, str]) -> Login | None:
    if "submission_auth" not in data:
        return None
    if "submission" not in data:
        raise ValueError("submission_auth: needs a submission URL")
    auth = _table(data, "submission_auth", _AUTH)
    password = _secret(auth, "submission_auth.", environ)
    if "user" not in auth or password is None:
        raise ValueError('submission_auth: expected {user = "...", password_env = "VARIABLE"}'
                         ' (or password = "...")')
    return Login(_text(auth, "user"), password)


def _endpoint(key: str, url: str) -> None:
    try:
        Endpoint.parse(url)
    except ValueError as error:
        raise ValueError(f"{key} = {url!r}: expected smtp://HOST:PORT, lmtp://HOST:PORT or"
                         f" lmtp:/path/to/socket ({error})") from None


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _template(key: str, template: str, *, required: bool, allowed: set[str] = _PLACEHOLDERS) -> None:
    try:
        used = _placeholders(template)
    except ValueError as error:
        raise ValueError(f"{key} = {template!r}: {error} (write a literal brace as {{{{ or }}}})") from None
    if used & _BATCH and used & {"local", "address"}:
        raise ValueError(f"{key} = {template!r}: one command per mailbox ({{local}}, {{address}}) or one"
                         " for all of an example's mailboxes ({locals}, {addresses}), not both")
    unknown = used - allowed
    if unknown:
        known = ", ".join(f"{{{p}}}" for p in sorted(allowed)) or "none"
        raise ValueError(f"{key} = {template!r}: unknown placeholder(s)"
                         f" {', '.join(f'{{{p}}}' for p in sorted(unknown))}; known: {known}")
    if required and not used:
        raise ValueError(f"{key} must be a template using {{local}}, {{domain}} or {{address}}")


def _mailbox_reader(mailbox: str, password: str | None, domain: str) -> None:
    """Refuse what no reader can read, with the reason; a URL that opens for a sample address is fine."""
    if mailbox.startswith("mbox:"):
        raise ValueError(f"mailbox = {mailbox!r}: mbox files are not read (one file shared by every"
                         " delivery cannot be read safely while the server writes); deliver to a"
                         " Maildir or read the mailbox over IMAP or POP3")
    if mailbox.startswith("maildir:") and not mailbox.removeprefix("maildir:").startswith("/"):
        raise ValueError(f"mailbox = {mailbox!r}: a Maildir path must be absolute, e.g."
                         " maildir:/srv/mail/{local}/Maildir (use ${VAR} for a directory set in"
                         " the environment)")
    try:
        open_mailbox(fill(mailbox, f"sample@{domain}"), password=password)
    except ValueError as error:
        raise ValueError(f"mailbox = {mailbox!r}: {error}") from None
