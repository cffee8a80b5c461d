"""The embedded server's own promises, seen from the wire."""

from __future__ import annotations

from typing import Literal

import pytest

from mailconform.suts.wire import EmbeddedServer, Injector, Reply
from tests.wire.recorder import Recorder

MESSAGE = b"Subject: x\r\n\r\nbody\r\n"


class Broken(Recorder):
    """Accepts every recipient, then fails while filing."""

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        raise RuntimeError("disk on fire")


def test_null_reverse_path_reaches_the_handler_as_empty() -> None:
    """MAIL FROM:<> (a notification) arrives at the handler as mail_from == ""."""
    recorder = Recorder()
    with EmbeddedServer(recorder, protocol="lmtp") as server, \
            Injector(server.url, sut="embedded") as injector:
        reply = injector.send("", ["a@isp.test"], MESSAGE)
    assert "C: MAIL FROM:<>" in reply.transcript
    assert recorder.deliveries == [("", ["a@isp.test"], MESSAGE)]


@pytest.mark.parametrize("protocol", ["smtp", "lmtp"])
def test_failing_handler_defers_every_recipient(protocol: Literal["smtp", "lmtp"]) -> None:
    """A handler that raises earns a 4xx per accepted recipient (so LMTP clients are not left waiting)."""
    with EmbeddedServer(Broken(), protocol=protocol) as server, \
            Injector(server.url, sut="embedded", reply_timeout=2) as injector:
        reply = injector.send("a@upstream.test", ["a@isp.test", "b@isp.test"], MESSAGE)
    assert [final.code for final in reply.data.values()] == [451, 451]
    assert "disk on fire" in reply.data["a@isp.test"].text


def test_multi_line_replies_are_served_and_read_whole() -> None:
    """A reply text with several lines goes out as code- continuation lines and comes back whole."""

    class Chatty(Recorder):
        def rcpt(self, address: str) -> Reply:
            return Reply(250, "2.1.5 ok\nsecond line")

    with EmbeddedServer(Chatty()) as server, Injector(server.url, sut="embedded") as injector:
        reply = injector.send("a@upstream.test", ["a@isp.test"], MESSAGE)
    assert reply.rcpts["a@isp.test"] == Reply(250, "2.1.5 ok\nsecond line")
    first = reply.transcript.index("S: 250-2.1.5 ok")
    assert reply.transcript[first + 1] == "S: 250 second line"


def test_greets_with_its_hostname_and_does_not_offer_smtputf8() -> None:
    """The server names the configured host and leaves SMTPUTF8 out of its EHLO keywords."""
    with EmbeddedServer(Recorder(), hostname="mx.other.test") as server, \
            Injector(server.url, sut="embedded") as injector:
        transcript = injector.send("a@upstream.test", ["a@isp.test"], MESSAGE).transcript
    assert transcript[1].startswith("S: 220 mx.other.test")
    assert not any("SMTPUTF8" in line for line in transcript)


def test_start_twice_is_refused_and_stop_is_idempotent() -> None:
    """A running server cannot be started again; stopping twice is harmless."""
    server = EmbeddedServer(Recorder())
    server.start()
    try:
        assert server.url.startswith("smtp://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    finally:
        server.stop()
    server.stop()
