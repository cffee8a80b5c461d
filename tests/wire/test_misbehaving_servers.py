"""The Injector against servers that break the protocol: never a silent pass."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from mailconform.suts.wire import EmbeddedServer, Injector, ProtocolError, Reply, Retry, check_reachable
from tests.wire.recorder import Recorder
from tests.wire.scripted import SILENT, ScriptedServer

FROM = "sender@upstream.test"
MESSAGE = b"Subject: x\r\n\r\nbody\r\n"


def polite(line: str) -> str | None:
    """A well-behaved SMTP server's answers."""
    verb = line.split(" ", 1)[0].upper()
    return {"EHLO": "250-scripted.test\r\n250 8BITMIME", "LHLO": "250 scripted.test", "DATA": "354 go ahead",
            "QUIT": "221 bye"}.get(verb, "250 ok")


def but(verb: str, answer: str | None) -> ScriptedServer:
    """A polite server that answers `verb` (a command word, or "." for the final dot) with `answer`."""
    return ScriptedServer(lambda line: answer if line.upper().startswith(verb) else polite(line))


def raised(server: ScriptedServer, protocol: str = "smtp", reply_timeout: float = 5) -> ProtocolError:
    """The ProtocolError that sending one two-recipient transaction to `server` raises."""
    with server, Injector(server.url(protocol), sut="scripted", reply_timeout=reply_timeout) as injector, \
            pytest.raises(ProtocolError) as caught:
        injector.send(FROM, ["a@isp.test", "b@isp.test"], MESSAGE)
    return caught.value


def test_garbage_reply_names_the_step() -> None:
    """A reply without a reply code is a ProtocolError at the command that drew it, with the transcript."""
    error = raised(but("RCPT", "hello there, friend"))
    assert error.step == "RCPT TO:<a@isp.test>"
    assert "garbage" in error.detail and "scripted:" in str(error)
    assert "C: RCPT TO:<a@isp.test>" in error.transcript
    assert "C: MAIL FROM:<sender@upstream.test>" in str(error)


def test_wrong_kind_of_reply_is_an_error() -> None:
    """A 2xx to DATA (instead of 354 or a refusal) is a ProtocolError, not a delivery."""
    error = raised(but("DATA", "250 sure"))
    assert (error.step, error.detail) == ("DATA", "unexpected reply 250")


def test_drop_after_final_dot_is_an_error() -> None:
    """A connection closed between the final dot and its reply is reported, not taken as delivered."""
    error = raised(but(".", None))
    assert error.step == "final dot" and "closed the connection" in error.detail
    assert error.transcript[-1] == "C: ."


def test_silence_times_out() -> None:
    """A server that never answers costs at most reply_timeout, then a ProtocolError."""
    start = time.monotonic()
    error = raised(but("MAIL", SILENT), reply_timeout=0.3)
    assert time.monotonic() - start < 2
    assert error.step == "MAIL FROM:<sender@upstream.test>" and "no reply within 0.3 s" in error.detail


def test_lmtp_with_too_few_final_replies_times_out() -> None:
    """An LMTP server that answers the dot once for two recipients is caught at the missing reply."""
    error = raised(ScriptedServer(polite), protocol="lmtp", reply_timeout=0.3)
    assert error.step == "final dot (reply 2 of 2, for <b@isp.test>)"


def test_refused_mail_sends_rset_and_no_rcpt_or_data() -> None:
    """A refused MAIL ends the transaction: RSET, no RCPT, no DATA, nothing delivered."""
    with but("MAIL", "550 5.7.1 go away") as server, Injector(server.url("smtp"), sut="scripted") as injector:
        reply = injector.send(FROM, ["a@isp.test"], MESSAGE)
    assert reply.mail == Reply(550, "5.7.1 go away")
    assert (reply.rcpts, reply.data) == ({}, {})
    assert reply.transcript[-2:] == ("C: RSET", "S: 250 ok")
    assert not reply.delivered_to("a@isp.test")


def test_reconnects_once_when_the_idle_connection_was_dropped() -> None:
    """If the server closed the connection between transactions, the next one runs on a new connection."""
    mails = iter(["250 ok", None])  # the second MAIL finds the connection closed (an idle timeout)
    with ScriptedServer(lambda line: next(mails, "250 ok") if line.startswith("MAIL") else polite(line)) \
            as server, Injector(server.url("smtp"), sut="scripted") as injector:
        first = injector.send(FROM, ["a@isp.test"], MESSAGE)
        second = injector.send(FROM, ["a@isp.test"], MESSAGE)
        assert server.connections == 2
    assert first.delivered_to("a@isp.test") and second.delivered_to("a@isp.test")
    assert "-- the server had closed the connection; reconnecting once" in second.transcript


def test_421_before_data_retries_once_on_a_new_connection() -> None:
    """A server closing at a per-connection limit (421 at MAIL) gets the transaction on a new connection."""
    mails = iter(["250 ok", "421 4.7.0 too many messages in this connection"])
    with ScriptedServer(lambda line: next(mails, "250 ok") if line.startswith("MAIL") else polite(line)) \
            as server, Injector(server.url("smtp"), sut="scripted") as injector:
        first = injector.send(FROM, ["a@isp.test"], MESSAGE)
        second = injector.send(FROM, ["a@isp.test"], MESSAGE)
        assert server.connections == 2
    assert first.delivered_to("a@isp.test") and second.delivered_to("a@isp.test")
    assert "-- 421 before DATA: reconnecting once" in second.transcript


def test_a_4xx_is_tried_again_on_a_new_connection() -> None:
    """A 4xx that is the connection's own limit (OpenSMTPD: 452 at MAIL after 100 messages on one
    connection) does not refuse the transaction: the next attempt opens a new connection."""
    sent = 0

    def limited(line: str) -> str | None:
        nonlocal sent
        if line.startswith("EHLO"):
            sent = 0
        if line.startswith("MAIL"):
            sent += 1
            return "452 4.5.3 Too many recipients: Too many messages sent" if sent > 2 else "250 ok"
        return polite(line)
    with ScriptedServer(limited) as server, \
            Injector(server.url("smtp"), sut="scripted", retry=Retry(attempts=2, delay=0.0)) as injector:
        replies = [injector.send(FROM, ["a@isp.test"], MESSAGE) for _ in range(5)]
        assert server.connections == 3  # two messages each, the third refused and sent again
    assert all(reply.delivered_to("a@isp.test") for reply in replies)
    assert "trying again in 0 s on a new connection (attempt 2 of 2)" in "\n".join(replies[2].transcript)


def test_server_gone_for_good_fails_the_reconnect() -> None:
    """When the server has gone away, the one reconnect fails with a clear ProtocolError."""
    recorder = Recorder()
    server = EmbeddedServer(recorder)
    with server, Injector(server.url, sut="embedded") as injector:
        injector.send(FROM, ["a@isp.test"], MESSAGE)
        server.stop()
        with pytest.raises(ProtocolError, match="nothing accepts connections"):
            injector.send(FROM, ["a@isp.test"], MESSAGE)
    assert len(recorder.deliveries) == 1


def test_unix_socket_lmtp(tmp_path: Path) -> None:
    """lmtp:/path reaches an LMTP server on a Unix socket and reads one final reply per recipient."""
    finals = iter(["250 2.0.0 a filed\r\n450 4.2.0 b later"])
    with ScriptedServer(lambda line: next(finals) if line == "." else polite(line),
                        unix_path=str(tmp_path / "lmtp.sock")) as server, \
            Injector(server.url("lmtp"), sut="scripted") as injector:
        reply = injector.send(FROM, ["a@isp.test", "b@isp.test"], MESSAGE)
    assert reply.data == {"a@isp.test": Reply(250, "2.0.0 a filed"),
                          "b@isp.test": Reply(450, "4.2.0 b later")}
    assert "C: LHLO upstream.test" in reply.transcript


def test_check_reachable_on_a_closed_port_fails_fast() -> None:
    """Nothing listening is a clear ProtocolError within moments, not a hang."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ProtocolError, match=f"nothing accepts connections at smtp://127.0.0.1:{port}"):
        check_reachable(f"smtp://127.0.0.1:{port}", sut="nowhere", timeout=2)
    assert time.monotonic() - start < 1


def test_check_reachable_wants_a_220_greeting() -> None:
    """A server that greets with 554 is not reachable for mail; a real one is."""
    with ScriptedServer(polite, greeting="554 5.3.2 not today") as server, \
            pytest.raises(ProtocolError, match="greeting is 554, not 220"):
        check_reachable(server.url("smtp"), sut="scripted", timeout=2)
    with EmbeddedServer(Recorder(), protocol="lmtp") as embedded:
        check_reachable(embedded.url, sut="embedded", timeout=2)
