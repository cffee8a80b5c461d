"""Play the duplicate-rule experiments of `specs.diagnosis` against a SUT.

Every experiment runs under a fresh nonce (new Message-IDs, new mailboxes), so
no experiment sees another's copies or another's entry in the SUT's
duplicate database.  Experiments that need time to pass or a new connection
run in two plays and need a SUT that keeps its mailboxes between plays.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace

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
from mailconform.specs.impact import CANONICAL, ImpactRow, impact_row
from mailconform.specs.model import Plan, plan
from mailconform.specs.observation import Observation, observe
from mailconform.suts.base import SutError, SystemUnderTest, execute
from mailconform.suts.network import NetworkSUT
from mailconform.suts.wire import MailboxError, open_mailbox

MATCHED = ("lost", "bounced")
"""Results that show the store's rule matched the copy."""
GAPS = (3.0, 10.0)
"""Pauses tried between the two copies: a few seconds, then a longer one."""
TOLERANCE = 0.25
"""A time window is narrowed down to ± this many seconds."""


def diagnose(sut: SystemUnderTest, failing: Plan, observation: Observation, *,
             gaps: tuple[float, ...] = GAPS, tolerance: float = TOLERANCE,
             progress: Callable[[str], None] | None = None) -> Diagnosis:
    """Which properties ``sut`` compares when it drops a copy of ``failing`` (a copy-per-path
    counterexample it played, with the ``observation`` it gave)."""
    pair = collision(failing, observation)
    if pair is None:
        return unexplained("no copy was lost in this run: nothing to diagnose")
    scenario = failing.scenario

    def fresh() -> Plan:
        return plan(scenario, sut.naming(secrets.token_hex(4)), sut.roles, sut.expands_aliases)

    trials: list[Trial] = []

    def run(vary: str, gap: float = 0.0) -> None:
        if progress and gap:
            progress(f"mailconform: diagnosing {sut.name}: the lost copy {describe(vary)} of {gap:.2f} s")
        trials.append(_play(sut, experiment(vary, fresh(), pair, gap)))

    if progress:
        progress(f"mailconform: diagnosing {sut.name}'s duplicate rule: the lost copy resent with one"
                 " property varied at a time")

    if pair.first is None:
        run("alone")
        return unexplained("the mailbox kept no copy of this story at all: not a duplicate rule", trials)
    for vary in SINGLE_PLAY:
        run(vary)
        base, alone = trials[0].result, trials[-1].result
        if vary == "alone" and (base not in MATCHED or alone in MATCHED):
            return conclude(trials)  # no duplicate rule to measure: the rest would say nothing
    run("connection")
    while (gap := next_gap(trials, gaps, tolerance)) is not None:
        run("gap", gap)
    run("none")  # once more at the end: a rule that holds still loses the copy again
    return conclude(trials)


def _keeps_state(sut: SystemUnderTest) -> bool:
    return isinstance(sut, NetworkSUT) and not sut.config.mailboxes


def _play(sut: SystemUnderTest, trial: Experiment) -> Trial:
    if not trial.needs_state:
        return judge(trial, sut.play(trial.plan), _elsewhere(sut, trial))
    if not _keeps_state(sut):
        return not_run(trial.vary, f"{sut.name} does not keep its mailboxes between plays")
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
    return judge(trial, merged, gap_seconds=gap if trial.vary == "gap" else None)


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



def impact(sut: SystemUnderTest, progress: Callable[[str], None] | None = None) -> tuple[ImpactRow, ...]:
    """Play every canonical story against ``sut``: copies owed and filed per story."""
    rows = []
    for story in CANONICAL:
        if progress:
            progress(f"mailconform: impact on {sut.name}: {story.name}")
        try:
            run = execute(sut, story.scenario)
        except SutError as error:
            rows.append(ImpactRow(story.name, 0, 0, story.at_least, str(error)))
            continue
        rows.append(impact_row(story, run.plan, run.observation))
    return tuple(rows)
