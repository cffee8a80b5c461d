"""Play the duplicate-rule experiments of `specs.diagnosis` against a SUT.

Every experiment runs under a fresh nonce (new Message-IDs, new mailboxes), so
no experiment sees another's copies or another's entry in the SUT's
duplicate database.  Experiments that need time to pass or a new connection
run in two plays and need a SUT that keeps its mailboxes between plays.

A queueing SUT may file a copy after its barrier (a procmail recipe waiting
for its lock file does), so a copy missing when the play returns is not yet a
lost one: every experiment or impact story that came up short on such a SUT is
read again once the full quiescence bound since its play has passed, and
judged on that read.  The experiments use fresh mailboxes each, so the waits
overlap: one bound at the end, not one per experiment.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace

from mailconform.specs.diagnosis import (
    SINGLE_PLAY,
    Diagnosis,
    Experiment,
    Trial,
    collision,
    conclude,
    describe,
    experiment,
    judge,
    next_gap,
    not_run,
    unexplained,
)
from mailconform.specs.impact import CANONICAL, CanonicalStory, ImpactRow, impact_row
from mailconform.specs.model import Plan, plan
from mailconform.specs.observation import Observation, observe
from mailconform.suts.base import Run, SutError, SystemUnderTest, execute
from mailconform.suts.network import BARRIER_FIELD, NetworkSUT
from mailconform.suts.wire import MailboxError, open_mailbox

MATCHED = ("lost", "bounced")
"""Results that show the store's rule matched the copy."""
GAPS = (3.0, 10.0)
"""Pauses tried between the two copies: a few seconds, then a longer one."""
TOLERANCE = 0.25
"""A time window is narrowed down to ± this many seconds."""


def diagnose(sut: SystemUnderTest, failing: Plan, observation: Observation, *,
             gaps: tuple[float, ...] = GAPS, tolerance: float = TOLERANCE,
             progress: Callable[[str], None] | None = None, deadline: float | None = None) -> Diagnosis:
    """Which properties ``sut`` compares when it drops a copy of ``failing`` (a copy-per-path
    counterexample it played, with the ``observation`` it gave).  At ``deadline`` (time.time(),
    the run's budget) the experiments stop and, being incomplete, claim no rule."""
    pair = collision(failing, observation)
    if pair is None:
        return unexplained("no copy was lost in this run: nothing to diagnose")
    scenario = failing.scenario

    def fresh() -> Plan:
        return plan(scenario, sut.naming(secrets.token_hex(4)), sut.roles, sut.expands_aliases)

    trials: list[Trial] = []
    unsettled: dict[int, _Unsettled] = {}

    def run(vary: str, gap: float = 0.0) -> None:
        if deadline is not None and time.time() + gap >= deadline:
            raise _OutOfTime
        if progress and gap:
            progress(f"mailconform: diagnosing {sut.name}: the lost copy {describe(vary)} of {gap:.2f} s")
        trial = experiment(vary, fresh(), pair, gap)
        judged, observation = _play(sut, trial)
        if judged.result in MATCHED and _files_later(sut):
            unsettled[len(trials)] = _Unsettled(trial, observation, time.monotonic(), judged.gap_seconds)
        trials.append(judged)

    def settled() -> list[Trial]:
        """The trials, those that came up short judged again once late copies had time to come."""
        if not unsettled:
            return trials
        if progress:
            progress(f"mailconform: diagnosing {sut.name}: reading {len(unsettled)} experiments again"
                     " after the quiescence bound, so a late copy is not taken for a dropped one")
        if not _wait_for_late_copies(sut, [u.played for u in unsettled.values()], deadline):
            raise _OutOfTime
        assert isinstance(sut, NetworkSUT)
        again = list(trials)
        for index, short in unsettled.items():
            observation = _read_again(sut, short.experiment.plan, short.observation)
            elsewhere = _elsewhere(sut, short.experiment) if not short.experiment.needs_state else None
            judged = judge(short.experiment, observation, elsewhere, short.gap_seconds)
            if judged.result != trials[index].result:
                judged = replace(judged, note="; ".join(filter(None, (
                    judged.note, f"was {trials[index].result} when the play returned: a copy came late"))))
            again[index] = judged
        return again

    if progress:
        progress(f"mailconform: diagnosing {sut.name}'s duplicate rule: the lost copy resent with one"
                 " property varied at a time")

    try:
        if pair.first is None:
            run("alone")
            return unexplained("the mailbox kept no copy of this story at all: not a duplicate rule",
                               settled())
        for vary in SINGLE_PLAY:
            run(vary)
            base, alone = trials[0].result, trials[-1].result
            if vary == "alone" and (base not in MATCHED or alone in MATCHED):
                return conclude(settled())  # no duplicate rule to measure: the rest would say nothing
        run("connection")
        while (gap := next_gap(trials, gaps, tolerance)) is not None:
            run("gap", gap)
        run("none")  # once more at the end: a rule that holds still loses the copy again
        return conclude(settled())
    except _OutOfTime:
        return unexplained(f"the run's time budget was spent after {len(trials)} experiments;"
                           " no rule is claimed from an incomplete set", trials)


@dataclass(frozen=True)
class _Unsettled:
    """An experiment that came up short on a SUT that may still file the missing copy."""

    experiment: Experiment
    observation: Observation
    played: float
    """time.monotonic() when its play returned."""
    gap_seconds: float | None


class _OutOfTime(Exception):
    """The run's budget ends before the next experiment would."""


def _keeps_state(sut: SystemUnderTest) -> bool:
    return isinstance(sut, NetworkSUT) and not sut.config.mailboxes


def _may_file_late(sut: SystemUnderTest) -> bool:
    """Whether a copy missing when play() returns may still be filed: a queue, and nothing
    that says it is empty."""
    return isinstance(sut, NetworkSUT) and sut.config.delivery == "queued" and not sut.config.idle


def _files_later(sut: SystemUnderTest) -> bool:
    """Whether a short play is read again at the end: it may file late, and the next play
    leaves its mailboxes alone (no fixed pool)."""
    return _may_file_late(sut) and _keeps_state(sut)


def _play(sut: SystemUnderTest, trial: Experiment) -> tuple[Trial, Observation]:
    if not trial.needs_state:
        observation = sut.play(trial.plan)
        judged = judge(trial, observation, _elsewhere(sut, trial))
        if judged.result in MATCHED and _may_file_late(sut) and not _keeps_state(sut):
            # the next play empties a fixed pool: read this one again now
            observation = sut.recheck(trial.plan)
            judged = judge(trial, observation, _elsewhere(sut, trial))
        return judged, observation
    if not _keeps_state(sut):
        return not_run(trial.vary, f"{sut.name} does not keep its mailboxes between plays"), Observation(())
    assert isinstance(sut, NetworkSUT)
    first, second = trial.sends
    started = time.monotonic()
    before = sut.play(replace(trial.plan, injections=(first.transaction,),
                              expected=trial.plan.expected[:1]))
    if second.own_connection:
        sut.hang_up()
    time.sleep(max(0.0, started + second.gap - time.monotonic()))
    gap = time.monotonic() - started
    after = sut.play(replace(trial.plan, injections=(second.transaction,)))
    merged = replace(after, accepted={**before.accepted, **after.accepted})
    return judge(trial, merged, gap_seconds=gap if trial.vary == "gap" else None), merged


def _read_again(sut: NetworkSUT, plan: Plan, before: Observation) -> Observation:
    """The plan's mailboxes as they are now, judged on what the SUT accepted in the play; notices
    at the sink are the play's (the next play cleared the sink)."""
    config = sut.config
    held: dict[str, list[tuple[str, bytes]]] = {}
    for mailbox in plan.mailboxes:
        with closing(open_mailbox(config.mailbox_url(mailbox), password=config.password,
                                  timeout=config.timeouts.reply)) as reader:
            held[mailbox] = [(folder, raw) for folder, raw in reader.filed()
                             if BARRIER_FIELD + b":" not in raw]
    now = observe({m: [raw for _, raw in filed] for m, filed in held.items()},
                  plan.naming.transaction_id_in, before.accepted, before.replies,
                  folders={m: [folder for folder, _ in filed] for m, filed in held.items()})
    return replace(now, notices=before.notices + tuple(n for n in now.notices if n not in before.notices))


def _elsewhere(sut: SystemUnderTest, trial: Experiment) -> int | None:
    """Copies of the trial under its recipient variant's own mailbox, where that is another
    mailbox the SUT lets us read; 0 when the variant names the addressed mailbox itself."""
    if trial.variant is None:
        return 0
    if not isinstance(sut, NetworkSUT):
        return None
    config = sut.config
    url = config.mailbox_url(trial.variant)
    if url == config.mailbox_url(trial.addressed):
        return 0
    try:
        with closing(open_mailbox(url, password=config.password, timeout=config.timeouts.reply)) as reader:
            held = reader.messages()
    except (MailboxError, ValueError, OSError):
        return None
    varied = trial.sends[-1].transaction.id  # the variant may name the addressed mailbox after all
    found = observe({trial.variant: held}, trial.plan.naming.transaction_id_in, {})
    return sum(1 for c in found.copies if c.path == varied)


def impact(sut: SystemUnderTest, progress: Callable[[str], None] | None = None,
           deadline: float | None = None) -> tuple[ImpactRow, ...]:
    """Play every canonical story against ``sut``: copies owed and filed per story; a story not
    begun by ``deadline`` (time.time(), the run's budget) is reported as not played."""
    rows: list[ImpactRow] = []
    unsettled: dict[int, tuple[CanonicalStory, Run, float]] = {}
    for story in CANONICAL:
        if deadline is not None and time.time() >= deadline:
            rows.append(ImpactRow(story.name, 0, 0, story.at_least, "the run's time budget was spent"))
            continue
        if progress:
            progress(f"mailconform: impact on {sut.name}: {story.name}")
        try:
            run = execute(sut, story.scenario)
            row = impact_row(story, run.plan, run.observation)
            if row.loses and _may_file_late(sut) and not _keeps_state(sut):
                row = impact_row(story, run.plan, sut.recheck(run.plan))  # the next play empties a pool
        except SutError as error:
            rows.append(ImpactRow(story.name, 0, 0, story.at_least, str(error)))
            continue
        if row.loses and _files_later(sut):
            unsettled[len(rows)] = (story, run, time.monotonic())
        rows.append(row)
    if not unsettled:
        return tuple(rows)
    if progress:
        progress(f"mailconform: impact on {sut.name}: reading {len(unsettled)} stories again after"
                 " the quiescence bound, so a late copy is not taken for a lost one")
    if not _wait_for_late_copies(sut, [played for _, _, played in unsettled.values()], deadline):
        for index, (story, _, _) in unsettled.items():
            rows[index] = ImpactRow(story.name, 0, 0, story.at_least,
                                    "the run's time budget was spent before a late copy could come")
    else:
        assert isinstance(sut, NetworkSUT)
        for index, (story, run, _) in unsettled.items():
            try:
                rows[index] = impact_row(story, run.plan, _read_again(sut, run.plan, run.observation))
            except (MailboxError, OSError) as error:
                rows[index] = ImpactRow(story.name, 0, 0, story.at_least, f"could not be read again: {error}")
    return tuple(rows)


def _wait_for_late_copies(sut: SystemUnderTest, played: list[float], deadline: float | None) -> bool:
    """Sleep until the quiescence bound since the latest play (``played``: time.monotonic() when
    each returned) has passed; False, without sleeping, when the run's deadline comes first."""
    assert isinstance(sut, NetworkSUT)
    wait = max(0.0, max(played) + sut.config.timeouts.quiescence - time.monotonic())
    if deadline is not None and time.time() + wait >= deadline:
        return False
    time.sleep(wait)
    return True
