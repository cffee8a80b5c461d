"""A search split across pytest-xdist workers: each worker publishes its share's evidence to a
folder the run's workers share, and a worker about to report an invariant gathers every share.

A share that never comes ends the wait with `ShareMissing` (its worker died, never started, or
outlived the run's budget): never a hang, and never a verdict on part of the examples.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mailconform.run import Evidence, Share
from mailconform.specs.wording import counted

STARTING = 120.0
"""Seconds a worker may take to announce itself (start Python, collect) before its share is missing."""
AFTER_BUDGET = 60.0
"""Seconds past the budget a share may take: its worker ends its search at the same deadline."""


class ShareMissing(Exception):
    """A share of the search never came: the invariants cannot be judged on every example."""


@dataclass
class Published:
    """What one worker's share of the search found."""

    worker: str
    evidence: dict[str, Evidence] = field(default_factory=dict)
    cut: bool = False
    """The run's budget ended the share early."""
    broken: str | None = None
    """Why the SUT could not be driven, if it could not: no share's evidence is a verdict then."""
    player: dict[str, int] = field(default_factory=dict)
    """The worker's player counters when its share ended (plays, judged, offered, refused)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Published:
        return cls(data["worker"], {i: Evidence.from_json(e) for i, e in data["evidence"].items()},
                   data["cut"], data["broken"], data["player"])


def announce(folder: Path, share: Share, worker: str) -> None:
    """Say which process searches ``share``, so that a wait for it ends if that process dies."""
    _write(folder / f"{share.index}.pid", f"{os.getpid()} {worker}\n")


def publish(folder: Path, share: Share, published: Published) -> None:
    _write(folder / f"{share.index}.json", json.dumps(asdict(published)))


def gather(folder: Path, of: int, deadline: float | None = None,
           progress: Callable[[str], None] | None = None, every: float = 10.0,
           poll: float = 0.05) -> list[Published]:
    """Every share of the search, waiting for those still running; ``deadline`` is the run's
    (time.time()), and ``progress`` hears which shares it waits for every ``every`` seconds."""
    started = reported = time.monotonic()
    while True:
        missing = [index for index in range(of) if not (folder / f"{index}.json").exists()]
        if not missing:
            return [Published.from_json(json.loads((folder / f"{index}.json").read_text()))
                    for index in range(of)]
        waited = time.monotonic() - started
        for index in missing:
            _check_alive(folder, index, of, waited)
        if deadline is not None and time.time() > deadline + AFTER_BUDGET:
            raise ShareMissing(f"share {missing[0] + 1} of {of} of the search never came: its worker was"
                               f" still searching {AFTER_BUDGET:.0f} s after the --budget was spent")
        if progress is not None and time.monotonic() - reported >= every:
            reported = time.monotonic()
            workers = ", ".join(_worker(folder, index) for index in missing)
            progress(f"mailconform: waiting {waited:.0f} s for"
                     f" {counted(len(missing), 'other share')} of the search ({workers})")
        time.sleep(poll)


def _check_alive(folder: Path, index: int, of: int, waited: float) -> None:
    announced = folder / f"{index}.pid"
    if not announced.exists():
        if waited > STARTING:
            raise ShareMissing(f"share {index + 1} of {of} of the search never came: its worker did"
                               f" not start it within {STARTING:.0f} s")
        return
    pid = int(announced.read_text().split()[0])
    if not _alive(pid) and not (folder / f"{index}.json").exists():
        raise ShareMissing(f"share {index + 1} of {of} of the search never came: its worker"
                           f" ({_worker(folder, index)}, pid {pid}) ended without it")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a dead child its parent has not waited for yet still answers signal 0
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _worker(folder: Path, index: int) -> str:
    try:
        return (folder / f"{index}.pid").read_text().split()[1]
    except (OSError, IndexError):
        return f"share {index + 1}"


def _write(path: Path, text: str) -> None:
    """Replace ``path`` in one step: a reader never sees half of it."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
