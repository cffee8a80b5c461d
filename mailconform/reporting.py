"""The plugin's reporting side: outcomes per invariant, evidence, progress, budget, exit status.

Each conformance test's report carries its invariant's `Result` (as ``report.mailconform``), so
the same hook records it whether the test ran here or on a pytest-xdist worker: the
controller merges what the workers send.  The JSON report is rewritten (atomically) after
every invariant, so a killed run leaves every finished outcome.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Generator
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import seed
from hypothesis.internal.reflection import function_digest  # the database key of a property

from mailconform.plugin import EXIT_SUT_ERROR, EXPECTED, OPENED_SUT, REPORT, SETTINGS, open_sut
from mailconform.run import Judge, OutOfTime, Share, SutBroken, Tally, first_line
from mailconform.shares import Published, ShareMissing, announce, gather, publish
from mailconform.specs.explain import InvariantViolation
from mailconform.specs.invariants import BY_ID
from mailconform.specs.report import Result
from mailconform.specs.wording import counted
from mailconform.suts.base import Player, SystemUnderTest

_JUDGE = pytest.StashKey[Judge]()
_DEADLINE = pytest.StashKey[float | None]()
_BROKEN = pytest.StashKey[str]()
"""The invariant during which the SUT could not be driven, once it could not."""
_SHARE = pytest.StashKey[tuple[Path, Share]]()
"""On an xdist worker: the folder the run's shares of the search go to, and this worker's share."""
_GATHERED = pytest.StashKey[list[Published] | BaseException]()
"""Every share of the search, once gathered, or why they could not be."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mailconform")
    group.addoption("--budget", type=float, default=None, metavar="SECONDS",
                    help="end the run cleanly after this long; invariants judged so far keep their"
                         " outcomes, the rest are reported as not run (default: no budget)")
    group.addoption("--min-evidence", type=float, default=0.1, metavar="SHARE",
                    help="say so when a passed invariant was exercised in fewer than this share of"
                         " its examples because the SUT refused recipients (default: 0.1)")
    group.addoption("--progress-every", type=float, default=10.0, metavar="SECONDS",
                    help="print each invariant's examples and time this often (default: 10; 0: never)")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)  # after the plugin has made the report
def pytest_configure(config: pytest.Config) -> None:
    worker: dict[str, Any] = getattr(config, "workerinput", {})
    given = config.getoption("hypothesis_seed", None)
    if given is None:
        given = secrets.randbits(32)
    elif given.isdigit():  # as Hypothesis reads it: a number if it is one
        given = int(given)
    config.stash[REPORT].seed = worker.get("mailconform_seed", given)
    budget = config.getoption("--budget")
    config.stash[_DEADLINE] = worker.get("mailconform_deadline",
                                         time.time() + budget if budget is not None else None)
    if "mailconform_search" in worker:
        placed = worker["mailconform_search"]
        folder, share = Path(placed["folder"]), Share(placed["index"], placed["of"])
        config.stash[_SHARE] = folder, share
        announce(folder, share, worker["workerid"])
    config.pluginmanager.register(_Reporter(config), "mailconform-reporter")


def pytest_report_header(config: pytest.Config) -> str:
    report_seed = config.stash[REPORT].seed
    return (f"mailconform: each scenario is drawn once and judged by every invariant (seed"
            f" {report_seed}; --hypothesis-seed={report_seed} repeats them)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One seed for the search and every conformance property: they draw the same scenarios."""
    for item in items:
        if item.get_closest_marker("invariant") and isinstance(item, pytest.Function):
            seed(config.stash[REPORT].seed)(item.obj)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A conformance property runs only to shrink what the search broke, or to replay saved
    counterexamples; an invariant the search judged unbroken has its verdict already."""
    marker = pyfuncitem.get_closest_marker("invariant")
    judging = pyfuncitem.funcargs.get("judge")
    if marker is None or not isinstance(judging, Judge) or not hasattr(pyfuncitem.obj, "hypothesis"):
        return None
    config = pyfuncitem.config
    if judging.evidence:
        _adopt_shares(config, judging)
    else:
        judging.search(_selected(pyfuncitem.session), config.stash[SETTINGS], config.stash[REPORT].seed)
    tally = judging.tallies.get(marker.args[0])
    if (tally is None or tally.first_violation is not None or tally.broken_elsewhere is not None
            or _has_saved_examples(pyfuncitem.obj)):
        return None
    if judging.search_cut:
        raise OutOfTime
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """An xdist worker searches its share before its first test, whatever tests it is given, so
    that every share is there for the worker that reports an invariant."""
    placed = session.config.stash.get(_SHARE, None)
    selected = _selected(session)
    if placed is None or not selected:
        return (yield)
    _search_share(session.config, *placed, selected)
    try:
        return (yield)
    finally:
        opened = session.config.stash.get(OPENED_SUT, None)
        if opened is not None:
            opened.close()


def _search_share(config: pytest.Config, folder: Path, share: Share, selected: list[str]) -> None:
    """Play and judge this worker's share of the search and publish what it found, also when the
    SUT could not be driven (then the other workers report that rather than wait)."""
    published = Published(config.workerinput["workerid"])  # type: ignore[attr-defined]
    try:
        system = config.stash[OPENED_SUT] = open_sut(config)
        judging = config.stash[_JUDGE] = _new_judge(config, system)
        judging.search(selected, config.stash[SETTINGS], config.stash[REPORT].seed, share)
        published.evidence, published.cut = judging.evidence, judging.search_cut
        published.player = _counters(judging)
    except SutBroken as broken:
        published.broken = str(broken)
    except BaseException as error:  # pytest.exit, a bug: the others learn it rather than wait
        published.broken = f"the search stopped on {published.worker}: {first_line(error)}"
        raise
    finally:
        publish(folder, share, published)


def _adopt_shares(config: pytest.Config, judging: Judge) -> None:
    """Judge on every worker's share of the search: wait for them once, then merge them."""
    gathered = config.stash.get(_GATHERED, None)
    if gathered is None:
        folder, share = config.stash[_SHARE]
        outcome: list[Published] | BaseException
        try:
            outcome = gather(folder, share.of, judging.deadline, judging.progress, judging.every)
        except ShareMissing as missing:
            outcome = missing
        else:
            broken = next((s.broken for s in outcome if s.broken), None)
            if broken:
                outcome = SutBroken(broken)
            else:
                judging.adopt([s.evidence for s in outcome])
                judging.search_cut = any(s.cut for s in outcome)
        gathered = config.stash[_GATHERED] = outcome
    if isinstance(gathered, BaseException):
        raise type(gathered)(*gathered.args)


def _selected(session: pytest.Session) -> list[str]:
    """The invariants whose properties this session runs (after -k and other deselection)."""
    markers = (item.get_closest_marker("invariant") for item in session.items
               if isinstance(item, pytest.Function) and hasattr(item.obj, "hypothesis"))
    return [marker.args[0] for marker in markers if marker]


def _has_saved_examples(test: Any) -> bool:
    """Whether the example database holds counterexamples of this property (replayed first)."""
    used = getattr(test, "_hypothesis_internal_use_settings", None)
    if used is None:  # a Hypothesis that keeps its settings elsewhere: let the property run
        return True
    key = function_digest(test.hypothesis.inner_test)
    return used.database is not None and next(iter(used.database.fetch(key)), None) is not None


@pytest.fixture(scope="session")
def judge(request: pytest.FixtureRequest, sut: SystemUnderTest) -> Judge:
    """Judges each example of every invariant on one shared play of its scenario."""
    config = request.config
    if _JUDGE in config.stash:  # the one this worker's share of the search judged with
        return config.stash[_JUDGE]
    judging = config.stash[_JUDGE] = _new_judge(config, sut)
    return judging


def _new_judge(config: pytest.Config, sut: SystemUnderTest) -> Judge:
    every = config.getoption("--progress-every")
    return Judge(Player(sut), config.stash[_DEADLINE], _progress_writer(config) if every > 0 else None, every)


def _counters(judging: Judge) -> dict[str, int]:
    return {"plays": judging.player.plays, "judged": judging.judgments,
            "offered": judging.player.offered, "refused": judging.player.refused}


def _progress_writer(config: pytest.Config) -> Any:
    capture = config.pluginmanager.getplugin("capturemanager")
    terminal = config.pluginmanager.getplugin("terminalreporter")
    worker = getattr(config, "workerinput", {}).get("workerid")

    def write(line: str) -> None:
        # Past pytest's output capture: progress is for the person watching the run.  An xdist
        # worker's own terminal output is not shown; its standard error is the controller's.
        with capture.global_and_fixture_disabled():
            if worker:
                sys.stderr.write(f"[{worker}] {line}\n")
                sys.stderr.flush()
            elif terminal is not None:
                terminal.write_line(line)
    return write


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """After the SUT broke or the budget ran out, the remaining invariants are not run, and say why."""
    marker = item.get_closest_marker("invariant")
    if marker is None:
        return
    broken = item.config.stash.get(_BROKEN, None)
    if broken:
        pytest.skip(f"not run: the SUT could not be driven (see {broken})")
    deadline = item.config.stash[_DEADLINE]
    judging = item.config.stash.get(_JUDGE, None)
    searched = judging is not None and marker.args[0] in judging.searched
    if deadline is not None and time.time() >= deadline and not searched:
        pytest.skip(f"not run: the --budget of {item.config.getoption('--budget'):g} s was spent")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    marker = item.get_closest_marker("invariant")
    if marker is None or not (call.when == "call" or report.failed or report.skipped):
        return report
    invariant = marker.args[0]
    judging = item.config.stash.get(_JUDGE, None)
    expected_failure = item.get_closest_marker("xfail") is not None
    if call.when != "call":
        broke = call.excinfo and isinstance(call.excinfo.value, SutBroken)
        result = (Result("not-exercised", reason=_skip_reason(report)) if report.skipped
                  else Result("error", reason=str(call.excinfo.value)) if call.excinfo and broke
                  else Result("error", reason=f"set-up failed: {_first_line(report)}"))
        if broke:
            _set(report, "failed", f"mailconform: {result.reason}")
    else:
        assert judging is not None, "a conformance property ran without the judge fixture"
        error = call.excinfo.value if call.excinfo else None
        result = _judged(judging, invariant, error)
        violation = _violation(error) if error is not None else None
        if result.outcome == "failed" and violation is not None and not isinstance(error, OutOfTime):
            from mailconform.followup import follow_up  # a plugin of its own, imported by pytest first
            result = replace(result, counterexample=follow_up(item.config, judging.player.sut, violation,
                                                              judging.progress, judging.deadline))
        _gate(item, report, result, expected_failure)
        if report.failed and result.outcome == "failed" and result.counterexample:
            # The story, names, replies and diagnosis, not a traceback of the suite's own code;
            # pytest's short summary then shows its first line: the invariant and the SUT.
            report.longrepr = _Story(result.counterexample["text"])  # type: ignore[assignment]  # duck-typed TerminalRepr
    if call.excinfo and isinstance(call.excinfo.value, SutBroken):
        item.config.stash[_BROKEN] = invariant
    report.mailconform = {  # type: ignore[attr-defined]
        "invariant": invariant, "result": asdict(result),
        "process": getattr(item.config, "workerinput", {}).get("workerid", "main"),
        **({"sut": judging.player.sut.name, "transport": judging.player.sut.transport,
            "players": _players(item.config, judging)} if judging else {}),
    }
    return report


def _players(config: pytest.Config, judging: Judge) -> dict[str, dict[str, int]]:
    """Process -> its player's counters: this one's now, and every other worker's when its share
    of the search ended (a worker given no test reports its plays no other way)."""
    gathered = config.stash.get(_GATHERED, None)
    shares = {s.worker: s.player for s in gathered if s.player} if isinstance(gathered, list) else {}
    here = getattr(config, "workerinput", {}).get("workerid", "main")
    return {**shares, here: _counters(judging)}


def _judged(judging: Judge, invariant: str, error: BaseException | None) -> Result:
    """The invariant's outcome from how its property ended and the evidence it gathered."""
    tally = judging.tallies.get(invariant) or Tally()
    examples, exercised = tally.examples, tally.exercised
    if isinstance(error, SutBroken):
        return Result("error", examples, exercised, str(error))
    violation = _violation(error) if error is not None else None
    if isinstance(error, OutOfTime):
        spent = f"the --budget was spent after {counted(examples, 'example')}"
        first = tally.first_violation.counterexample if tally.first_violation else tally.broken_elsewhere
        if first:
            return Result("failed", examples, exercised, f"{spent}; shrinking stopped there", first)
        return _on_evidence(invariant, tally, spent)
    if error is not None and violation is None:
        return Result("error", examples, exercised, f"the suite could not judge it: {_one_line(error)}")
    if violation is None and tally.broken_elsewhere:
        return Result("failed", examples, exercised, "another worker's share of the search broke it,"
                      " but replaying that story here did not: its counterexample, unshrunk",
                      tally.broken_elsewhere)
    if violation is None:
        return _on_evidence(invariant, tally, "")
    if (invariant == "copy-per-path" and tally.last_failing and tally.first_violation
            and tally.last_failing != tally.lost):
        # The shrunk story is read again after the full quiescence bound before it is
        # reported as loss: shrinking did not wait that long for each candidate (the story
        # already confirmed lost, e.g. a failing explicit example, was read that way once).
        try:
            waited = judging.late_by(tally.last_failing)
        except SutBroken as broken:
            return Result("error", examples, exercised, str(broken))
        if waited is not None:
            return Result("failed", examples, exercised,
                          f"the shrunk story's copies were all there {waited:.1f} s after the last"
                          " reply, so this is the first confirmed loss, unshrunk",
                          tally.first_violation.counterexample)
    return Result("failed", examples, exercised, "", violation.counterexample)


def _on_evidence(invariant: str, tally: Tally, note: str) -> Result:
    """Passed, late or not exercised: an invariant that was not broken, said on its evidence."""
    examples, exercised = tally.examples, tally.exercised
    if tally.late:
        late = (f"in {len(tally.late)} of {counted(examples, 'example')} a copy that looked lost was there"
                f" after the full quiescence bound, up to {max(tally.late):.1f} s after the last reply:"
                " late delivery, not loss")
        return Result("late", examples, exercised, f"{note}; {late}" if note else late)
    if exercised:
        return Result("passed", examples, exercised, note)
    nothing = f"no example gave it anything to check (evidence: {BY_ID[invariant].evidence})"
    return Result("not-exercised", examples, 0, f"{note}; {nothing}" if note else nothing)


def _gate(item: pytest.Item, report: pytest.TestReport, result: Result, expected_failure: bool) -> None:
    """Make the pytest outcome say what the gate should: a change fails it, nothing judged skips
    it, and an error is never an expected failure."""
    stopped = "--budget" in result.reason
    if result.outcome == "error":
        _set(report, "failed", f"mailconform: {result.reason}")
    elif result.outcome == "not-exercised" or (result.outcome in ("passed", "late") and stopped):
        _set(report, "skipped", (str(item.path), item.location[1] or 0, f"Skipped: {result.reason}"))
    elif result.outcome == "failed" and stopped:
        if expected_failure:
            _set(report, "skipped", None)
            report.wasxfail = "expected"
        else:
            _set(report, "failed", _Story((result.counterexample or {}).get("text", result.reason)))
    elif result.outcome == "late":
        if expected_failure:
            _set(report, "failed", f"mailconform: expected copy-per-path to fail, but {result.reason}")
        else:
            _set(report, "passed", None)


class _Story:
    """A failure's whole text for the report; its first line alone for pytest's short summary,
    which would otherwise repeat the whole story on CI (where pytest never trims it)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reprcrash = SimpleNamespace(message=(text.splitlines() or [""])[0])

    def toterminal(self, writer: Any) -> None:
        writer.line(self.text)

    def __str__(self) -> str:
        return self.text


def _set(report: pytest.TestReport, outcome: str, longrepr: Any) -> None:
    report.outcome = outcome  # type: ignore[assignment]
    report.longrepr = longrepr
    if hasattr(report, "wasxfail"):
        del report.wasxfail


def _violation(error: BaseException) -> InvariantViolation | None:
    """The invariant violation an error is made of, if it is made of nothing else."""
    if isinstance(error, InvariantViolation):
        return error
    if isinstance(error, BaseExceptionGroup):
        found = [_violation(e) for e in error.exceptions]
        return found[0] if found and all(found) else None
    return None


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"[:300]


def _first_line(report: pytest.TestReport) -> str:
    return (str(report.longrepr).strip().splitlines() or ["?"])[-1][:300]


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


class _Reporter:
    """Hooks that need the run's config: recording, merging, the JSON file, the summary, the exit status."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.players: dict[str, dict[str, int]] = {}
        """Process (xdist worker id or "main") -> its player's counters, the latest reported."""
        self.shares: Path | None = None
        """Where the xdist workers publish their shares of the search (removed at the end)."""
        self.workers = 0
        self.crashed: list[str] = []
        """xdist workers that went down without finishing: the run cannot vouch for what they held."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Every xdist worker draws with the controller's seed and stops at its deadline; each of
        the first workers plays its share of the search (one started to replace a crashed one
        searches everything itself: the crashed one's share is reported missing)."""
        node.workerinput["mailconform_seed"] = self.config.stash[REPORT].seed
        node.workerinput["mailconform_deadline"] = self.config.stash[_DEADLINE]
        of = node.workerinput.get("workercount", 0)
        if self.workers < of:
            if self.shares is None:
                self.shares = Path(tempfile.mkdtemp(prefix="mailconform-search-"))
            node.workerinput["mailconform_search"] = {"folder": str(self.shares), "index": self.workers,
                                                      "of": of}
        self.workers += 1

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        if error:
            self.crashed.append(f"{node.gateway.id} ({' '.join(str(error).split())[:200]})")

    def pytest_sessionstart(self) -> None:
        _write_json(self.config)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record an invariant's result: here, or on the xdist controller from a worker's report."""
        payload: dict[str, Any] | None = getattr(report, "mailconform", None)
        if payload is None or _is_worker(self.config):
            return
        record = self.config.stash[REPORT]
        record.record(payload["invariant"], Result(**payload["result"]))
        if "sut" in payload:
            record.sut, record.transport = payload["sut"], payload["transport"]
            for process, counters in payload["players"].items():  # counters only grow
                known = self.players.get(process, counters)
                self.players[process] = {key: max(known[key], counters[key]) for key in counters}
            players = self.players.values()
            record.offered, record.refused, record.plays = (
                sum(p[key] for p in players) for key in ("offered", "refused", "plays"))
            record.judged = sum(p["judged"] for p in players)
        _write_json(self.config)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the final report; exit with EXIT_SUT_ERROR when the SUT could not be driven."""
        if _is_worker(self.config):
            return
        if self.shares is not None:
            shutil.rmtree(self.shares, ignore_errors=True)
        record = self.config.stash[REPORT]
        record.complete = True
        stopped = session.shouldfail or session.shouldstop  # -x, --maxfail, or a plugin's stop
        record.absent = (f"not run: the session stopped early ({stopped})" if stopped
                         else "not run: not selected in this session")
        if self.crashed:
            record.absent = f"not run: an xdist worker crashed: {', '.join(self.crashed)}"
        if self.crashed or any(r.outcome == "error" for r in record.results.values()):
            session.exitstatus = EXIT_SUT_ERROR
        _write_json(self.config)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        record = self.config.stash[REPORT]
        if not record.results:
            return
        expected = self.config.stash[EXPECTED]
        write = terminalreporter.write_line
        for line in record.table(None if expected is None else {k: e.outcome for k, e in expected.items()}):
            write(line)
        for line in record.thin_evidence(self.config.getoption("--min-evidence")):
            write(line)
        if record.plays:
            shared = 1 - record.plays / record.judged
            write(f"mailconform: {counted(record.plays, 'play')} judged {counted(record.judged, 'example')}"
                  f" ({shared:.0%} judged on a play made before)")
        for result in record.results.values():
            if result.outcome == "error":
                write(f"mailconform: ERROR: {result.reason}")
                break
        path = self.config.getoption("--report-json")
        if path:
            write(f"mailconform: report written to {path}")


def _write_json(config: pytest.Config) -> None:
    """Replace the JSON report in one step, so a reader (or a killed run) never sees half of it."""
    path: Path | None = config.getoption("--report-json")
    if path is None or _is_worker(config):
        return
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(config.stash[REPORT].to_json(), indent=2) + "\n")
    os.replace(partial, path)
