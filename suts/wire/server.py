"""The embedded SMTP/LMTP server: aiosmtpd on loopback, answering as a DeliveryHandler says."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable
from types import TracebackType
from typing import Literal, Protocol

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailconform.suts.wire.replies import Reply

log = logging.getLogger(__name__)


class DeliveryHandler(Protocol):
    """The mail logic behind the server; called from the server's thread."""

    def rcpt(self, address: str) -> Reply:
        """The answer to RCPT TO:<address>."""
        ...

    def deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        """File `data` for the accepted `rcpts`; one reply per recipient, same order.

        `mail_from` is "" for the null reverse-path <>.
        """
        ...


def reply_lines(reply: Reply) -> str:
    """`reply` on the wire, without the final CRLF; a multi-line text gets code- continuations."""
    lines = reply.text.split("\n")
    return "\r\n".join(f"{reply.code}{'-' if i < len(lines) - 1 else ' '}{line}"
                       for i, line in enumerate(lines))


def smtp_data_reply(replies: list[Reply]) -> Reply:
    """SMTP has one final-dot reply: the first success, else the first failure."""
    return next((reply for reply in replies if reply.accepted), replies[0])


class _Hooks:
    """aiosmtpd handler hooks that ask a DeliveryHandler."""

    def __init__(self, handler: DeliveryHandler, protocol: Literal["smtp", "lmtp"]) -> None:
        self._handler = handler
        self._protocol = protocol

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        reply = self._handler.rcpt(address)
        if reply.accepted:
            envelope.rcpt_tos.append(address)
        return reply_lines(reply)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # aiosmtpd spells the null reverse-path "<>"; the handler gets "", as Injector.send takes it.
        mail_from = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
        replies = self._deliver(mail_from, list(envelope.rcpt_tos), envelope.original_content or b"")
        if self._protocol == "lmtp":
            # aiosmtpd pushes a single status after the dot; RFC 2033 wants one line per
            # accepted recipient, so the status we hand back is all of them, CRLF-joined.
            return "\r\n".join(reply_lines(reply) for reply in replies)
        return reply_lines(smtp_data_reply(replies))

    def _deliver(self, mail_from: str, rcpts: list[str], data: bytes) -> list[Reply]:
        try:
            replies = self._handler.deliver(mail_from, rcpts, data)
            if len(replies) != len(rcpts):
                raise ValueError(f"deliver() gave {len(replies)} replies for {len(rcpts)} recipients")
        except Exception as err:
            # Answer every recipient anyway, so an LMTP client is not left waiting for
            # replies; 4xx because nothing is known to be filed.
            log.exception("delivery handler failed")
            return [Reply(451, f"4.3.0 delivery handler failed: {err!r}")] * len(rcpts)
        return replies


class _PreboundController(Controller):
    """A Controller serving a socket bound in advance: a free port without a race."""

    def __init__(self, hooks: _Hooks, listener: socket.socket, server_class: type[SMTP],
                 hostname: str) -> None:
        host, port = listener.getsockname()[:2]
        super().__init__(hooks, hostname=host, port=port, server_hostname=hostname,
                         enable_SMTPUTF8=False)
        self._listener = listener
        self._server_class = server_class

    def factory(self) -> SMTP:
        return self._server_class(self.handler, **self.SMTP_kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._listener)


class EmbeddedServer:
    """An SMTP or LMTP server on 127.0.0.1, in a thread; `url` is set by start().

    `port` 0 picks a free port."""

    def __init__(self, handler: DeliveryHandler, *, protocol: Literal["smtp", "lmtp"] = "smtp",
                 hostname: str = "mx.isp.test", port: int = 0) -> None:
        self.handler = handler
        self.protocol = protocol
        self.hostname = hostname
        self.port = port
        self.url = ""
        self._controller: _PreboundController | None = None

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError(f"embedded {self.protocol} server already running at {self.url}")
        try:
            listener = socket.create_server(("127.0.0.1", self.port))
        except OSError as err:
            raise RuntimeError(f"embedded {self.protocol} server cannot listen on 127.0.0.1:{self.port}:"
                               f" {err.strerror}") from err
        controller = _PreboundController(_Hooks(self.handler, self.protocol), listener,
                                         LMTP if self.protocol == "lmtp" else SMTP, self.hostname)
        try:
            controller.start()
        except Exception as err:
            controller.stop(no_assert=True)
            listener.close()
            raise RuntimeError(f"embedded {self.protocol} server failed to start: {err!r}") from err
        self._controller = controller
        self.url = f"{self.protocol}://127.0.0.1:{controller.port}"

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
