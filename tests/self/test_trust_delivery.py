"""Knowing when a queueing server has finished: barriers, filtered out, never dropped as duplicates."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailconform.specs.explain import explain
from mailconform.specs.invariants import BY_ID
from mailconform.specs.model import plan
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Observation, ObservedCopy
from mailconform.specs.scenario import Scenario, Submit, World
from mailconform.strategies import SEED_STORY
from mailconform.suts.base import execute
from mailconform.suts.config import load
from mailconform.suts.network import BARRIER_FIELD, NetworkSUT
from tests.self.test_sut_config import STORE
from tests.servers.ports import free_port


@contextmanager
def store_sut(tmp_path: Path, *flags: str, extra_toml: str = "") -> Iterator[tuple[NetworkSUT, Path]]:
    """tests/servers/store.py with ``flags``, as a NetworkSUT described by a minimal TOML file."""
    port, root = free_port(), tmp_path / "mail"
    process = subprocess.Popen([sys.executable, str(STORE), "--port", str(port), "--root", str(root), *flags],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout and process.stdout.readline().strip() == "ready"
    config = tmp_path / "sut.toml"
    config.write_text(f'name = "store"\ninject = "smtp://127.0.0.1:{port}"\ndomains = ["isp.test"]\n'
                      f'mailbox = "maildir:{root}/{{local}}/Maildir"\n{extra_toml}')
    sut = NetworkSUT(load(config, {}))
    try:
        yield sut, root
    finally:
        sut.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def queueing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[NetworkSUT, Path]]:
    """A store filing 0.3-0.6 s after its 250 (plus the flags the test names), as a NetworkSUT."""
    with store_sut(tmp_path, "--queue", "0.3", "0.6", *getattr(request, "param", ())) as started:
        yield started


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[NetworkSUT]:
    """A store filing before its 250, no submission entry, a 20 s settle: a NetworkSUT."""
    with store_sut(tmp_path, extra_toml="[timeouts]\nsettle = 20\n") as (sut, _):
        yield sut


def filed(root: Path) -> list[bytes]:
    return [path.read_bytes() for path in root.glob("*/Maildir/new/*")]


def test_barriers_wait_for_the_queue_and_are_not_observed(queueing: tuple[NetworkSUT, Path]) -> None:
    """Both seed-story copies are seen although filed after the 250; the barrier was filed too,
    but is not part of the observation."""
    sut, root = queueing
    run = execute(sut, SEED_STORY)
    assert sorted(c.path or "" for c in run.observation.copies) == sorted(
        e.path for e in run.plan.expected)
    assert not any(BARRIER_FIELD in c.raw for c in run.observation.copies)
    assert any(BARRIER_FIELD in raw for raw in filed(root))
    assert 0.3 <= run.observation.waited < 3


@pytest.mark.parametrize("queueing", [("--dedup",)], indirect=True)
def test_a_deduplicating_store_files_the_barrier(queueing: tuple[NetworkSUT, Path]) -> None:
    """Barriers carry their own Message-ID: a store dropping repeated Message-IDs still files them,
    so the wait ends on the barrier (not the bound) and the dropped copy is missing."""
    sut, root = queueing
    run = execute(sut, SEED_STORY)
    assert len(run.observation.copies) == 1
    assert any(BARRIER_FIELD in raw for raw in filed(root))
    assert run.observation.waited < 3  # the quiescence bound is 10 s


def test_a_counterexample_names_the_folder_a_copy_was_filed_in() -> None:
    """A copy filed outside the INBOX is attributed as usual, and the story says which folder."""
    the_plan = plan(SEED_STORY, Naming("f0"), ("mx",))
    first = the_plan.expected[0]  # filed in a folder; the list's copy is missing
    copies = (ObservedCopy(first.mailbox, b"", first.path, "Duplicates"),)
    observation = Observation(copies, accepted={tx.id: frozenset(tx.rcpts) for tx in the_plan.injections})
    invariant = BY_ID["copy-per-path"]
    violations = invariant.check(the_plan, observation)
    assert violations
    assert "in folder Duplicates" in explain(invariant, the_plan, observation, violations, "store")


def test_submission_to_a_sut_without_aliases_names_their_users() -> None:
    """A SUT that does not expand aliases is handed the alias's final user at submission too,
    and owes that user the copy (it cannot know the alias)."""
    scenario = Scenario(World(("u1",), aliases=(("a1", ("u1",)),)), (Submit("m1", "u1", to=("a1",)),))
    the_plan = plan(scenario, Naming("s0"), ("mx", "submission"), sut_expands_aliases=False)
    (tx,) = the_plan.injections
    user = the_plan.naming.address("u1")
    assert tx.rcpts == (user,)
    assert [e.requires for e in the_plan.expected] == [((tx.id, frozenset({user})),)]


def test_a_story_the_sut_cannot_be_sent_is_read_at_once(plain: NetworkSUT) -> None:
    """A local user writing to a remote one never reaches a SUT with no submission entry: with
    nothing sent there is nothing to wait for, so the mailboxes are read without a settle wait."""
    story = Scenario(World(("u1",), ("r1",)), (Submit("m1", "u1", ("r1",)),))
    run = execute(plain, story)
    assert run.plan.injections == () and run.observation.copies == ()
    assert run.observation.waited < 10  # a wait for the mailboxes to hold still takes the 20 s settle
