"""Message content as an ordered header list plus a body, rendered by `email`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from email import policy
from email.message import EmailMessage

Field = tuple[str, str]


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
        message = EmailMessage(policy=policy.SMTP)
        for name, value in self.headers:
            message[name] = value
        message.set_content(self.body)
        return message.as_bytes()
