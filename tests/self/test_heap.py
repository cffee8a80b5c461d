"""Freed C-heap memory is given back to the system on glibc (suts/heap.py)."""

from __future__ import annotations

import platform
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mailconform.specs.scenario import Scenario, Submit, World
from mailconform.suts import base, heap
from mailconform.suts.inprocess import InProcessSUT

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def test_memory_a_thread_freed_goes_back_to_the_system() -> None:
    """Half of 32 MiB a thread allocated and freed, held by its arena, leaves the resident set."""
    kept: list[list[bytes]] = []

    def allocate_and_free_half() -> None:
        blocks = [b"x" * (16 * 1024) for _ in range(2048)]  # above pymalloc's limit: glibc's own
        del blocks[1::2]  # every other block stays, so glibc cannot shrink the arena itself
        kept.append(blocks)
    worker = threading.Thread(target=allocate_and_free_half)
    worker.start()
    worker.join()
    before = heap.resident_mib()
    heap.give_back_freed_memory()
    assert heap.resident_mib() < before - 8


def test_a_player_gives_memory_back_every_so_many_plays(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long run trims once per TRIM_EVERY plays, not per play and not never."""
    trims: list[int] = []
    player = base.Player(InProcessSUT())
    monkeypatch.setattr(base, "give_back_freed_memory", lambda: trims.append(player.plays))
    for n in range(2 * heap.TRIM_EVERY + 1):  # distinct scenarios: each one played
        player.run(Scenario(World(("u1",)), (Submit("m1", "u1", to=("u1",), message_id=f"k{n}"),)))
    assert trims == [heap.TRIM_EVERY, 2 * heap.TRIM_EVERY]


_COUNT_ARENAS = """
import ctypes, smtplib, sys, tempfile, threading
from mailconform.suts import heap
from mailconform.suts.sink import Sink, sink_port
if sys.argv[1] == "shared":
    heap.threads_share_one_arena()
def allocate() -> None:
    kept = [b"x" * 4096 for _ in range(64)]  # above pymalloc's limit: glibc's own
    ready.wait()
ready = threading.Event()
workers = [threading.Thread(target=allocate) for _ in range(4 if sys.argv[1] != "sink" else 0)]
for worker in workers:
    worker.start()
if sys.argv[1] == "sink":  # a server thread the suite starts, receiving a message
    with smtplib.SMTP("127.0.0.1", sink_port(Sink().url)) as client:
        client.sendmail("a@relay.test", ["b@elsewhere.test"], "Subject: s\\r\\n\\r\\n" + "x\\r\\n" * 4096)
glibc = ctypes.CDLL(None)
glibc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as info:
    stream = ctypes.c_void_p(glibc.fopen(info.name.encode(), b"w"))
    glibc.malloc_info(0, stream)
    glibc.fclose(stream)
    print(info.read().decode().count("<heap nr="))
ready.set()
"""


@pytest.mark.parametrize(("threads", "one_arena"), [("shared", True), ("own", False), ("sink", True)])
def test_server_threads_allocate_from_the_main_arena(threads: str, one_arena: bool) -> None:
    """Once threads share one arena, four threads allocating at once add no arena of their own
    (left alone, glibc gives each its own, so the check can fail); and a server the suite starts
    receives mail without an arena of its own."""
    counted = subprocess.run([sys.executable, "-c", _COUNT_ARENAS, threads], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parents[2])
    assert (int(counted.stdout) == 1) == one_arena
