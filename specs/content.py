"""Message content as an ordered header list plus a body, rendered by `email`.

Rendering uses `WIRE`, a compat32 policy: the fields are plain ASCII the model
wrote, so the header registry's parsing (most of the cost of building a message
with `email.policy.SMTP`) buys nothing; compat32 still folds long fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from email.policy import Compat32

Field = tuple[str, str]


class _Wire(Compat32):
    """compat32 with CRLF line ends, writing a field that already fits its lines as it is.

    Refolding every field is most of the cost of writing a message; a field of
    short ASCII lines (as the model writes most, and as a parsed message holds its
    folded ones) comes out the same, or folded where its author folded it.
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        lines = f"{name}: {value}".splitlines()
        limit = self.max_line_length or 998
        if value.isascii() and all(len(line) <= limit for line in lines):
            return "".join(line + self.linesep for line in lines).encode("ascii")
        return super().fold_binary(name, value)


WIRE = _Wire(linesep="\r\n")
"""The policy the suite writes and parses messages with: CRLF, no header registry."""
_TEXT_BODY: tuple[Field, ...] = (("Content-Type", 'text/plain; charset="utf-8"'),
                                 ("Content-Transfer-Encoding", "7bit"), ("MIME-Version", "1.0"))


@dataclass(frozen=True)
class Content:
    headers: tuple[Field, ...]
    body: str

    def prepend(self, *fields: Field) -> Content:
        return replace(self, headers=tuple(fields) + self.headers)

    def append(self, *fields: Field) -> Content:
        return replace(self, headers=self.headers + tuple(fields))

    def without(self, name: str) -> Content:
        return replace(self, headers=tuple(f for f in self.headers if f[0].lower() != name.lower()))

    def with_value(self, name: str, value: str) -> Content:
        """Replace the value of every field called ``name``, keeping its place."""
        return replace(self, headers=tuple(
            (n, value) if n.lower() == name.lower() else (n, v) for n, v in self.headers))

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def to_bytes(self) -> bytes:
        """The message as sent: CRLF line ends, long fields folded, a 7-bit text body.

        Each field is folded by `WIRE`, as `Message.as_bytes` would; the generator's walk over
        a message with no parts adds nothing to that but time."""
        head = b"".join(WIRE.fold_binary(name, value) for name, value in self.headers + _TEXT_BODY)
        body = self.body.encode("ascii")  # the model writes ASCII bodies, so 7bit holds
        ends = b"\r\n" if body.endswith((b"\n", b"\r")) else b""
        return head + b"\r\n" + b"\r\n".join(body.splitlines()) + ends
