"""docs/github-actions-example.yml: every command it names exists and every step does what it says."""

import re
import shlex
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from mailconform.cli import main
from mailconform.plugin import PROFILES
from mailconform.suts.config import load

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "github-actions-example.yml"
USERS_OWN = {"make", "./run-test-server"}
"""The example's stand-ins for the user's own build and start commands."""
SHELL_WORDS = {"if", "then", "else", "fi", "do", "done", "!"}


def steps() -> list[dict[str, Any]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    return list(job["steps"])


def step(name: str) -> dict[str, Any]:
    return next(s for s in steps() if s.get("name") == name)


def commands(script: str) -> list[list[str]]:
    """Each simple command of a step's script, as words; heredoc bodies are data, not commands."""
    found: list[list[str]] = []
    words: list[str] = []

    def end_command() -> None:
        while words and words[0] in SHELL_WORDS:
            words.pop(0)
        if words and words[0] not in ("for", "exit") and "=" not in words[0]:  # not a loop header
            found.append(words[:])
        words.clear()

    heredoc = None
    for line in script.replace("\\\n", " ").splitlines():
        if heredoc:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        heredoc = next(iter(re.findall(r"<<-?\s*'?(\w+)'?", line)), None)
        lexer = shlex.shlex(re.sub(r"\$\{\{.*?\}\}", "X", line), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        redirected = False
        for token in [*lexer, ";"]:
            if redirected:  # the target of a redirection
                redirected = False
            elif set(token) <= set("();<>|&"):
                redirected = bool(set(token) & set("<>"))
                if not redirected:
                    end_command()
            elif token.endswith("$"):  # "$(": a command substitution begins
                words.extend(filter(None, [token[:-1]]))
                end_command()
            else:
                words.append(token)
    return found


def test_every_script_is_valid_shell() -> None:
    """Each `run:` block parses as bash."""
    scripts = [s["run"] for s in steps() if "run" in s]
    assert len(scripts) >= 5
    for script in scripts:
        result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_every_command_named_exists(capsys: pytest.CaptureFixture[str]) -> None:
    """Every program the example runs exists here (but the user's own), and every `mailconform`
    command line uses a subcommand and options the command has."""
    named = [words for s in steps() if "run" in s for words in commands(s["run"])]
    programs = {words[0] for words in named}
    assert {"pip", "python3", "mailconform", "cat", "seq", "sleep", "echo"} <= programs | USERS_OWN
    for program in programs - USERS_OWN - {"mailconform"}:  # the packaging test installs that one
        assert shutil.which(program), f"{program} is not a command"
    mailconform = [words for words in named if words[0] == "mailconform"]
    assert [words[1] for words in mailconform] == ["run"]
    for words in mailconform:
        with pytest.raises(SystemExit):
            main([words[1], "--help"])
        usage = capsys.readouterr().out
        for option in (w for w in words if w.startswith("--")):
            assert option in usage, f"mailconform {words[1]} has no {option}"
    (pip,) = [words for words in named if words[0] == "pip"]
    assert pip[1] == "install" and Requirement(pip[2]).name == "mailconform"


def test_the_run_uses_what_the_other_steps_prepare() -> None:
    """The run reads the TOML the example writes, fills the cached database directory and writes
    the files that are uploaded, under a profile that exists."""
    run = step("Run mailconform")
    (words,) = commands(run["run"])
    options = dict(zip(words[2::2], words[3::2], strict=True))
    assert options["--sut-config"] == "$RUNNER_TEMP/mailconform.toml"
    assert options["--db"] == step("Restore the counterexample database")["with"]["path"]
    uploaded = step("Keep the verdicts")["with"]["path"].splitlines()
    assert [options["--junitxml"], options["--report-json"]] == [
        p.replace("${{ runner.temp }}", "$RUNNER_TEMP") for p in uploaded]
    assert run["env"]["MAILCONFORM_PROFILE"] in PROFILES


def test_the_toml_shown_is_a_valid_sut_config(tmp_path: Path) -> None:
    """The TOML the example writes is accepted by the suite as it stands, and printed for the log."""
    script = step("Describe the server to mailconform")["run"]
    env = {"RUNNER_TEMP": str(tmp_path), "GITHUB_WORKSPACE": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    config = load(tmp_path / "mailconform.toml", {})
    assert (config.name, config.inject) == ("my-server", "smtp://127.0.0.1:2525")
    assert config.domains == ("isp.test",)
    assert config.mailbox_url("u1@isp.test") == f"maildir:{tmp_path}/mail/u1/Maildir"
    assert config.expectations == tmp_path / "ws" / "ci" / "mailconform-expectations.toml"
    assert 'name = "my-server"' in result.stdout


def test_the_wait_step_waits_for_the_port() -> None:
    """The wait step ends at once when the port answers, and fails with one line when it never does."""
    script = step("Wait until the server accepts connections on its port")["run"]
    assert script.count("2525") == 2
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        ready = subprocess.run(["bash", "-c", script.replace("2525", str(port))], capture_output=True,
                               text=True, timeout=30)
    assert ready.returncode == 0, ready.stderr
    never = subprocess.run(["bash", "-c", script.replace("2525", str(port)).replace("seq 60", "seq 2")],
                           capture_output=True, text=True, timeout=30)
    assert never.returncode == 1 and never.stderr.strip().endswith(f"nothing listens on 127.0.0.1:{port}"
                                                                   " after 60 s")
