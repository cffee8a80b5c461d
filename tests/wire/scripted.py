"""A raw-socket mail server that answers as a test's script says: for servers that misbehave."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

SILENT = "(say nothing)"
"""A script's answer meaning: send no reply, keep listening."""

Script = Callable[[str], str | None]
"""Client line (or "." after message data) -> reply lines without the final CRLF; None closes."""


class ScriptedServer:
    """Serves connections one after another on 127.0.0.1 (or a Unix socket) in a thread."""

    def __init__(self, script: Script, *, greeting: str = "220 scripted.test ESMTP",
                 unix_path: str | None = None) -> None:
        self.script = script
        self.greeting = greeting
        self.connections = 0
        if unix_path is None:
            self._listener = socket.create_server(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        else:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(unix_path)
            self._listener.listen()
            self.address = unix_path
        self._listener.settimeout(0.05)  # lets the thread notice stop()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, protocol: str) -> str:
        return f"{protocol}:{self.address}" if self.address.startswith("/") else f"{protocol}://{self.address}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stopping.set()
        self._thread.join()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with connection, contextlib.suppress(OSError):  # a client that went away ends it
                connection.settimeout(5)
                self._converse(connection)

    def _converse(self, connection: socket.socket) -> None:
        lines = connection.makefile("rb")
        connection.sendall(f"{self.greeting}\r\n".encode())
        in_data = False
        for raw in lines:
            if in_data and raw != b".\r\n":
                continue
            reply = self.script("." if in_data else raw.decode().rstrip("\r\n"))
            in_data = False
            if reply is None:
                return
            if reply != SILENT:
                connection.sendall(f"{reply}\r\n".encode())
                in_data = reply.startswith("354")
