"""The Injector against the embedded server, over SMTP and LMTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailconform.suts.wire import EmbeddedServer, Injector, Reply
from tests.wire.recorder import Recorder

FROM = "sender@upstream.test"
MESSAGE = b"From: sender@upstream.test\r\nTo: a@isp.test\r\nSubject: hello\r\n\r\nHello.\r\n"


@pytest.fixture(params=["smtp", "lmtp"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Recorder, EmbeddedServer]]:
    recorder = Recorder()
    with EmbeddedServer(recorder, protocol=request.param) as server:
        yield recorder, server


def test_each_rcpt_gets_its_own_reply(served: tuple[Recorder, EmbeddedServer]) -> None:
    """Every RCPT's reply is kept under the address as sent; only accepted ones get a final reply."""
    recorder, server = served
    with Injector(server.url, sut="embedded") as injector:
        reply = injector.send(FROM, ["a@isp.test", "nobody@isp.test", "b@isp.test"], MESSAGE)
    assert reply.mail.accepted
    assert reply.rcpts["nobody@isp.test"] == Reply(550, "5.1.1 no such user")
    assert [reply.rcpts[r].code for r in ("a@isp.test", "b@isp.test")] == [250, 250]
    assert set(reply.data) == {"a@isp.test", "b@isp.test"}
    assert reply.delivered_to("a@isp.test") and not reply.delivered_to("nobody@isp.test")
    assert recorder.deliveries == [(FROM, ["a@isp.test", "b@isp.test"], MESSAGE)]


def test_no_accepted_rcpt_means_rset_and_no_data(served: tuple[Recorder, EmbeddedServer]) -> None:
    """When no RCPT is accepted the transaction is reset and DATA is never sent."""
    recorder, server = served
    with Injector(server.url, sut="embedded") as injector:
        reply = injector.send(FROM, ["nobody@isp.test"], MESSAGE)
    assert reply.data == {}
    assert reply.transcript[-2] == "C: RSET"
    assert "C: DATA" not in reply.transcript
    assert recorder.deliveries == []


def test_lmtp_final_replies_are_read_per_recipient_in_order() -> None:
    """LMTP answers the final dot once per accepted RCPT, in order, and each reply lands on its rcpt."""
    with EmbeddedServer(Recorder(), protocol="lmtp") as server, \
            Injector(server.url, sut="embedded") as injector:
        reply = injector.send(FROM, ["a@isp.test", "full@isp.test", "nobody@isp.test", "b@isp.test"],
                              MESSAGE)
    assert reply.data == {"a@isp.test": Reply(250, "2.0.0 filed for a@isp.test"),
                          "full@isp.test": Reply(452, "4.2.2 mailbox full"),
                          "b@isp.test": Reply(250, "2.0.0 filed for b@isp.test")}
    assert reply.transcript[-3:] == ("S: 250 2.0.0 filed for a@isp.test", "S: 452 4.2.2 mailbox full",
                                     "S: 250 2.0.0 filed for b@isp.test")
    assert not reply.delivered_to("full@isp.test")


def test_smtp_final_reply_is_copied_to_every_accepted_rcpt() -> None:
    """SMTP's single final reply counts for every accepted recipient (success if any filing succeeded)."""
    with EmbeddedServer(Recorder()) as server, Injector(server.url, sut="embedded") as injector:
        mixed = injector.send(FROM, ["full@isp.test", "a@isp.test"], MESSAGE)
        failed = injector.send(FROM, ["full@isp.test", "full2@isp.test"], MESSAGE)
    assert set(mixed.data.values()) == {Reply(250, "2.0.0 filed for a@isp.test")}
    assert set(failed.data.values()) == {Reply(452, "4.2.2 mailbox full")}


def test_repeated_rcpt_keeps_its_first_replies() -> None:
    """An address sent twice in one transaction is delivered per RCPT; its entry keeps the first replies."""
    recorder = Recorder()
    with EmbeddedServer(recorder, protocol="lmtp") as server, \
            Injector(server.url, sut="embedded") as injector:
        reply = injector.send(FROM, ["a@isp.test", "a@isp.test"], MESSAGE)
    assert recorder.deliveries[0][1] == ["a@isp.test", "a@isp.test"]
    assert reply.transcript.count("S: 250 2.0.0 filed for a@isp.test") == 2
    assert reply.delivered_to("a@isp.test")


def test_one_connection_carries_many_transactions(served: tuple[Recorder, EmbeddedServer]) -> None:
    """Transactions after the first reuse the connection without reconnecting; one that ended at
    the final dot needs no RSET, one whose recipients were all refused is reset."""
    recorder, server = served
    with Injector(server.url, sut="embedded") as injector:
        replies = [injector.send(FROM, [f"u{i}@isp.test"], MESSAGE) for i in range(50)]
        refused = injector.send(FROM, ["nobody@isp.test"], MESSAGE)
        after_refusal = injector.send(FROM, ["u1@isp.test"], MESSAGE)
    assert all(reply.delivered_to(f"u{i}@isp.test") for i, reply in enumerate(replies))
    assert replies[0].transcript[0].startswith("-- connect")
    assert all(reply.transcript[0].startswith("C: MAIL FROM:") for reply in replies[1:])
    assert not refused.delivered_to("nobody@isp.test") and refused.transcript[-2] == "C: RSET"
    assert after_refusal.transcript[0].startswith("C: MAIL FROM:")
    assert len(recorder.deliveries) == 51


def test_dot_stuffing_and_line_endings_round_trip(served: tuple[Recorder, EmbeddedServer]) -> None:
    """Lines starting with a dot arrive unchanged; bare LF and CR become CRLF; a final CRLF is added."""
    recorder, server = served
    with Injector(server.url, sut="embedded") as injector:
        injector.send(FROM, ["a@isp.test"], b"Subject: dots\n\n.\n..\n.hidden\r\nbare CR\rend")
    assert recorder.deliveries[0][2] == b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nbare CR\r\nend\r\n"


TRACED = (
    b"Resent-From: list-owner@lists.test\r\n"
    b"Resent-Date: Mon, 02 Jan 2023 10:00:00 +0000\r\n"
    b"Resent-Message-ID: <r1.abc@lists.test>\r\n"
    b"Received: from relay.upstream.test by mx.lists.test id T2; Mon, 2 Jan 2023 10:00:01 +0000\r\n"
    b"Received: from client.test by relay.upstream.test id T1; Mon, 2 Jan 2023 09:59:59 +0000\r\n"
    b"Received: by client.test with local id T0;\r\n\tMon, 2 Jan 2023 09:59:58 +0000\r\n"
    b"From: Ann <ann@upstream.test>\r\n"
    b"To: list@lists.test\r\n"
    b"Bcc: ann@upstream.test, hidden@isp.test\r\n"
    b"Message-ID: <m1.abc@upstream.test>\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"\r\n"
    b"Body with 8-bit caf\xc3\xa9 and trailing spaces   \r\n"
)


def test_header_section_arrives_byte_identical(served: tuple[Recorder, EmbeddedServer]) -> None:
    """Received, Resent-* and Bcc fields, folding, 8-bit bytes and spacing all arrive exactly as sent."""
    recorder, server = served
    with Injector(server.url, sut="embedded") as injector:
        assert injector.send(FROM, ["hidden@isp.test"], TRACED).delivered_to("hidden@isp.test")
    assert recorder.deliveries[0][2] == TRACED


def test_any_crlf_text_round_trips_exactly() -> None:
    """Any CRLF-terminated lines (no bare CR/LF, within the 1000-octet limit) arrive byte for byte."""
    recorder = Recorder()
    line = st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    with EmbeddedServer(recorder) as server, Injector(server.url, sut="embedded") as injector:

        @settings(max_examples=150, deadline=None, database=None)
        @given(st.lists(line, max_size=20))
        def round_trip(lines: list[bytes]) -> None:
            data = b"".join(part + b"\r\n" for part in lines)
            assert injector.send(FROM, ["a@isp.test"], data).delivered_to("a@isp.test")
            assert recorder.deliveries[-1][2] == data

        round_trip()
