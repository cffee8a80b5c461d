"""A --sut-config file is checked whole, before any example, with one line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailconform.suts.config import ConfigError, SutConfig, load, shell_commands
from mailconform.suts.wire import Login, Retry

BASE = 'name = "x"\ninject = "smtp://127.0.0.1:2525"\n'
GOOD = BASE + 'domains = ["isp.test"]\nmailbox = "maildir:/srv/mail/{local}/Maildir"\n'


def loaded(tmp_path: Path, toml: str, environ: dict[str, str] | None = None) -> SutConfig:
    path = tmp_path / "sut.toml"
    path.write_text(toml)
    return load(path, environ or {})


@pytest.mark.parametrize(("toml", "complaint"), [
    (BASE + 'domains = "isp.test"\nmailbox = "maildir:/m/{local}"\n',
     "domains = 'isp.test': expected a list"),
    (BASE + 'domains = []\nmailbox = "maildir:/m/{local}"\n', "domains: expected a list of at least one"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "mbox:/var/mail/{local}"\n', "mbox files are not read"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "maildir:mail/{local}"\n', "a Maildir path must be absolute"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "maildir:/m/{user}"\n', "unknown placeholder(s) {user}"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "maildir:/m/{local"\n', "write a literal brace"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "maildir:/m/{local}"\nprovision = "mk {mailbox}"\n',
     "provision = 'mk {mailbox}': unknown placeholder(s) {mailbox}"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "maildir:/m/{local}"\nprovision = "mk {local} {locals}"\n',
     "one command per mailbox ({local}, {address}) or one for all"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "pop3://{local}@127.0.0.1"\n', "no password given"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "ftp://{local}"\n', "not a maildir:"),
    (GOOD + 'mailbox_dir = "${RUNNER_TEMP}"\n', "unknown keys ['mailbox_dir']"),
    (BASE + 'domains = ["isp.test"]\nmailbox = "maildir:${RUNNER_TEMP}/{local}"\n',
     "mailbox: ${RUNNER_TEMP} is not set in the environment"),
    (GOOD + 'delivery = "instant"\n', 'expected "queued"'),
    (GOOD + 'sink = "smtp://192.0.2.1:25"\n', "the suite listens on loopback only"),
    (GOOD + '[retry]\nattempts = 0\n', "[retry] attempts = 0: expected a whole number"),
    (GOOD + '[retry]\ntries = 3\n', "unknown [retry] keys ['tries']"),
    (GOOD + '[timeouts]\nsettle = -1\n', "[timeouts] settle = -1"),
    (GOOD + 'expands_aliases = "yes"\n', "expands_aliases = 'yes': expected true or false"),
    (GOOD + 'roles = ["mx", "submission"]\nsubmission = "smtp://127.0.0.1:587?tls"\n', "unknown options"),
    (GOOD + 'submission_auth = {user = "a", password_env = "P"}\n', "needs a submission URL"),
    (GOOD + 'roles = ["mx", "submission"]\nsubmission = "smtp://127.0.0.1:587"\n'
     'submission_auth = {user = "a", password_env = "NO_SUCH_VARIABLE"}\n', "$NO_SUCH_VARIABLE is not set"),
    (GOOD + 'idle = "postqueue -j {local}"\n', "unknown placeholder(s) {local}; known: none"),
])
def test_each_mistake_is_one_line_naming_the_file(tmp_path: Path, toml: str, complaint: str) -> None:
    """Every mistake is refused before anything runs, in one line with the file and the key."""
    with pytest.raises(ConfigError) as raised:
        loaded(tmp_path, toml)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "sut.toml"))
    assert complaint in message, message


def test_variables_come_from_the_environment(tmp_path: Path) -> None:
    """${VAR} is replaced in every string value, tables included."""
    config = loaded(
        tmp_path, BASE + 'domains = ["isp.test"]\nmailbox = "maildir:${ROOT}/{local}"\n'
                         'roles = ["mx", "submission"]\nsubmission = "smtp://127.0.0.1:587?starttls"\n'
                         'submission_auth = {user = "${WHO}", password_env = "PW"}\n',
        {"ROOT": "/srv/mail", "WHO": "alice", "PW": "s3cret"})
    assert config.mailbox_url("bob@isp.test") == "maildir:/srv/mail/bob"
    assert config.submission_login == Login("alice", "s3cret")


def test_defaults_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    """Unset keys take the defaults; expectations and commands are relative to the TOML's directory."""
    config = loaded(tmp_path, GOOD + 'expectations = "known.toml"\n')
    assert (config.delivery, config.retry, config.sink, config.idle) == ("queued", Retry(), None, None)
    assert config.expectations == tmp_path / "known.toml"
    assert config.directory == tmp_path
    tuned = loaded(tmp_path, GOOD + 'delivery = "synchronous"\nsink = "smtp://127.0.0.1:2600"\n'
                                    '[retry]\nattempts = 2\ndelay = 0\n')
    assert (tuned.delivery, tuned.retry, tuned.sink) == ("synchronous", Retry(2, 0.0), "smtp://127.0.0.1:2600")


def test_provision_commands_are_shell_quoted_one_per_mailbox_or_one_for_all() -> None:
    """{local} gives a command per mailbox; {locals} one for all of them; every name shell-quoted."""
    addresses = ["a1_u1@isp.test", "a1_u'2@isp.test"]
    assert shell_commands("mk {local} {domain}", addresses) == [
        ("mk a1_u1 isp.test", ["a1_u1@isp.test"]), ("mk 'a1_u'\"'\"'2' isp.test", ["a1_u'2@isp.test"])]
    assert shell_commands("mk {locals}", addresses) == [("mk a1_u1 'a1_u'\"'\"'2'", addresses)]
    assert shell_commands("mk {addresses}", []) == []
