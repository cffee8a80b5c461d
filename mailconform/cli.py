"""The `mailconform` command: run the conformance suite from any directory, and work with its reports.

    mailconform run [--sut NAME | --sut-config PATH] [--expectations PATH] [--report-json PATH]
                    [--junitxml PATH] [--db PATH] [--db-shared DIR_OR_URL] [-- PYTEST OPTION ...]
    mailconform expectations REPORT.json OUT.toml
    mailconform matrix REPORT.json ... [--markdown M.md] [--html M.html] [--title T] [--notes N.json]
    mailconform list
    mailconform serve NAME [--port N] [--root DIR]
    mailconform replay BUNDLE (--inject URL --mailbox TEMPLATE | --sut-config PATH) [--same-ids]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from mailconform import replay
from mailconform.specs import matrix
from mailconform.specs.invariants import CATALOGUE
from mailconform.suts import expectations, serve
from mailconform.suts.policies import POLICY_NAMES, policy
from mailconform.suts.registry import SUT_NAMES

USAGE_ERROR = int(pytest.ExitCode.USAGE_ERROR)
"""The exit status of a mistake on the command line or in an input file: pytest's own."""

PACKAGE = Path(__file__).parent
SUITE = PACKAGE / "conformance"
RUN_CONFIG = PACKAGE / "run.ini"


class InputError(Exception):
    """A mistake the user can fix: shown as one line, exit status USAGE_ERROR."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InputError(f"{message} (see {self.prog} --help)")


def main(argv: list[str] | None = None, prog: str = "mailconform", command: str | None = None) -> int:
    """The command line; `command` serves the older `python -m` spellings of one subcommand."""
    args = sys.argv[1:] if argv is None else list(argv)
    own, passed_on = (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args else (args, [])
    try:
        options = _parser(prog).parse_args(own if command is None else [command, *own])
        options.invocation = f"{prog} {shlex.join(own)}"
        if passed_on and options.command is not run:
            raise InputError("only `run` passes options after -- on to pytest")
        chosen: Callable[[argparse.Namespace, list[str]], int] = options.command
        return chosen(options, passed_on)
    except InputError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:  # the reader went away (`mailconform list | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Property-based conformance tests for mail delivery systems.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    runner = commands.add_parser(
        "run", help="run the conformance suite against a system under test",
        description="Run the bundled conformance suite from any directory. The caller's pytest"
                    " configuration, conftest.py files and PYTEST_ADDOPTS are ignored; options after"
                    " -- go to pytest (e.g. -- -n 2 -x). Exits with the suite's status (see README).")
    choice = runner.add_mutually_exclusive_group()
    choice.add_argument("--sut", metavar="NAME", help=f"a built-in SUT: {', '.join(SUT_NAMES)}")
    choice.add_argument("--sut-config", metavar="PATH", type=_existing_file,
                        help="TOML file describing the server to test")
    runner.add_argument("--expectations", metavar="PATH", type=_existing_file,
                        help="TOML of known outcomes; the run fails only where outcomes differ")
    runner.add_argument("--report-json", metavar="PATH", type=_writable_file,
                        help="write one outcome per invariant, with counterexamples, here")
    runner.add_argument("--junitxml", metavar="PATH", type=_writable_file, help="write JUnit XML here")
    runner.add_argument("--db", metavar="PATH", type=_absolute,
                        help="Hypothesis example database directory; saved counterexamples replay first")
    runner.add_argument("--db-shared", metavar="DIR_OR_REDIS_URL",
                        help="a further example database, read but never written (e.g. the main branch's)")
    runner.add_argument("--bundle", metavar="DIR", type=_absolute,
                        help="write a bug-report bundle for every failed invariant to DIR/<sut>/<invariant>/")
    runner.set_defaults(command=run)

    keeper = commands.add_parser(
        "expectations", help="write an expectations file from a report",
        description="Rewrite OUT.toml so it expects what REPORT.json shows, keeping the reasons of"
                    " entries that did not change.")
    keeper.add_argument("report", metavar="REPORT.json", type=Path)
    keeper.add_argument("out", metavar="OUT.toml", type=Path)
    keeper.set_defaults(command=write_expectations)

    pages = commands.add_parser(
        "matrix", help="render reports as one conformance matrix (Markdown and/or HTML)",
        description="Merge --report-json files into one conformance matrix page.")
    pages.add_argument("reports", metavar="REPORT.json", nargs="+", type=Path)
    pages.add_argument("--markdown", metavar="PATH", type=Path, help="write the Markdown page here")
    pages.add_argument("--html", metavar="PATH", type=Path, help="write the HTML page here")
    pages.add_argument("--title", default="Conformance matrix", help="the page's heading")
    pages.add_argument("--notes", metavar="PATH", type=Path,
                       help="a JSON object: SUT name -> a note shown with it")
    pages.add_argument("--paper", metavar="PATH", type=Path,
                       help="a TOML file of systems documented but not run (see suts/real/paper.toml)")
    pages.add_argument("--versions", metavar="PATH", type=Path,
                       help="a JSON object: SUT name -> the version shown in its row")
    pages.add_argument("--footer", metavar="TEXT",
                       help="how the page was made (default: the command line that made it)")
    pages.set_defaults(command=write_matrix)

    lister = commands.add_parser("list", help="list the built-in SUTs, policies and invariants")
    lister.set_defaults(command=list_catalogue)

    server = commands.add_parser("serve", help="run a built-in SUT as a loopback server until interrupted",
                                 description=(serve.__doc__ or "").splitlines()[0])
    serve.arguments(server)
    server.set_defaults(command=lambda options, _: serve.run(options))

    replayer = commands.add_parser("replay", help="replay a bug-report bundle against a server",
                                   description=(replay.__doc__ or "").splitlines()[0])
    replay.arguments(replayer)
    replayer.set_defaults(command=lambda options, _: replay.run(options))
    return parser


def run(options: argparse.Namespace, passed_on: list[str]) -> int:
    """The bundled suite under pytest, with a configuration of its own, whatever the cwd holds."""
    args = ["-c", str(RUN_CONFIG), "--rootdir", str(PACKAGE), "--noconftest", "--import-mode=importlib",
            "-p", "no:cacheprovider",
            # Verdicts are InvariantViolations, not bare asserts; and this process has imported
            # mailconform already, which pytest would warn it cannot rewrite.
            "--assert=plain",
            # Explicit, so the plugin loads even where PYTEST_DISABLE_PLUGIN_AUTOLOAD is set
            # (and xdist workers, which re-read these arguments, load it too).
            "-p", "mailconform.plugin",
            str(SUITE)]
    for name in ("sut", "sut_config", "expectations", "report_json", "junitxml", "db", "db_shared", "bundle"):
        value = getattr(options, name)
        if value is not None:  # one token each: pytest never mistakes the value for a test path
            args.append(f"--{name.replace('_', '-')}={value}")
    with _without("PYTEST_ADDOPTS"):
        return int(pytest.main(args + passed_on))


def write_expectations(options: argparse.Namespace, _: list[str]) -> int:
    report = read_report(options.report)
    try:
        previous = expectations.load(options.out) if options.out.exists() else {}
    except ValueError as error:
        raise InputError(str(error)) from None
    _write(options.out, expectations.rewritten(report, previous))
    print(f"wrote {options.out}")
    return 0


def write_matrix(options: argparse.Namespace, _: list[str]) -> int:
    if options.markdown is None and options.html is None:
        raise InputError("matrix: give --markdown PATH, --html PATH or both")
    reports = [read_report(path) for path in options.reports]
    notes = _read_json(options.notes) if options.notes else {}
    if not isinstance(notes, dict):
        raise InputError(f"{options.notes}: expected a JSON object of SUT name -> note")
    paper = _paper_rows(options.paper) if options.paper else []
    labels = matrix.row_labels([r["sut"] for r in reports], _run_labels(options.reports))
    versions = _read_json(options.versions) if options.versions else {}
    labels = [f"{label} ({versions[r['sut']]})" if r["sut"] in versions else label
              for label, r in zip(labels, reports, strict=True)]
    footer = options.footer or f"Made by `{options.invocation}`."
    page = dict(labels=labels, title=options.title, footer=footer)
    written = []
    if options.markdown:
        written.append(_write(options.markdown, matrix.markdown(reports, notes, paper, **page)))
    if options.html:
        written.append(_write(options.html, matrix.html(reports, notes, paper, **page)))
    print(f"wrote {' and '.join(written)} ({len(reports)} report(s) run, {len(paper)} documented)")
    return 0


def list_catalogue(_: argparse.Namespace, __: list[str]) -> int:
    print("Systems under test (--sut NAME, or --sut-config PATH.toml for any server):")
    for name in SUT_NAMES:
        print(f"  {name}")
    print("\nPolicies (embedded:<policy>, embedded-lmtp:<policy>, model:<policy>):")
    width = max(map(len, POLICY_NAMES))
    for name in POLICY_NAMES:
        rule = policy(name)
        breaks = f"breaks {rule.breaks}" if rule.breaks else "conforming"
        print(f"  {name:<{width}}  {breaks}: {rule.found_in}")
    print("\nInvariants:")
    width = max(len(inv.id) for inv in CATALOGUE)
    for inv in CATALOGUE:
        print(f"  {inv.id:<{width}}  {inv.strength:<6}  {', '.join(inv.rfc)}")
        print(f"  {'':<{width}}  {inv.summary}")
    return 0


def read_report(path: Path) -> dict[str, Any]:
    """A --report-json file, checked for the fields every command here reads."""
    report = _read_json(path)
    entries = report.get("invariants") if isinstance(report, dict) else None
    fields = {"id", "outcome", "counterexample"}
    if not (isinstance(report, dict) and isinstance(report.get("sut"), str) and isinstance(entries, list)
            and all(isinstance(e, dict) and fields <= e.keys() for e in entries)):
        raise InputError(f"{path}: not a mailconform report (expected the JSON that --report-json writes)")
    return report


def _paper_rows(path: Path) -> list[matrix.PaperRow]:
    try:
        return matrix.paper_rows(tomllib.loads(path.read_text()))
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError, ValueError) as error:
        raise InputError(f"{path}: not a paper-rows file ({error})") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not JSON ({error})") from None


def _write(path: Path, text: str) -> str:
    try:
        path.write_text(text)
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    return str(path)


def _run_labels(paths: list[Path]) -> list[str]:
    """What tells runs apart: the report's file name, or its whole path when names repeat."""
    stems = [p.stem for p in paths]
    return [stem if stems.count(stem) == 1 else str(path) for stem, path in zip(stems, paths, strict=True)]


def _existing_file(text: str) -> Path:
    path = Path(text).absolute()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def _writable_file(text: str) -> Path:
    path = Path(text).absolute()
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: directory {path.parent} does not exist")
    return path


def _absolute(text: str) -> Path:
    return Path(text).absolute()


@contextmanager
def _without(variable: str) -> Iterator[None]:
    saved = os.environ.pop(variable, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[variable] = saved
