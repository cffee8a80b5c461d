"""How symbols become concrete addresses, Message-IDs and trace ids.

A fresh nonce per example goes into every Message-ID, trace id and (unless the
SUT has a fixed pool of mailboxes) every local part in the SUT's domain, so no
example can see another's state -- a duplicate database in the SUT included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

LIST_HOST = "lists.test"
FORWARD_HOST = "fwd.test"
REMOTE_DOMAIN = "remote.example"
ID_DOMAIN = "ids.example"

_TRANSACTION_ID = re.compile(r"\bid\s+(mc(\w+)t\d+)\b")
"""Any example's transaction id (its nonce, the second group, is compared): one pattern for the
run, where one per nonce would fill `re`'s cache and hold hundreds of compiled patterns."""


@dataclass(frozen=True)
class Naming:
    nonce: str
    """Word characters only: it is part of local parts and trace ids."""
    sut_domain: str = "isp.test"
    pool: Mapping[str, str] = field(default_factory=dict)
    """symbol -> fixed local part, for SUTs that cannot create mailboxes."""

    def address(self, symbol: str) -> str:
        kind = symbol[0]
        if kind in "ua":
            local = self.pool.get(symbol) or f"{self.nonce}_{symbol}".lower()
            return f"{local}@{self.sut_domain}"
        domain = {"r": REMOTE_DOMAIN, "L": LIST_HOST, "f": FORWARD_HOST}[kind]
        return f"{symbol.lower()}@{domain}"

    def list_bounces(self, list_name: str) -> str:
        return f"{list_name.lower()}-bounces@{LIST_HOST}"

    def list_id(self, list_name: str) -> str:
        return f"<{list_name.lower()}.{LIST_HOST}>"

    def message_id(self, key: str) -> str:
        # One id domain for every sender, so two messages can truly collide.
        return f"<{key}.{self.nonce}@{ID_DOMAIN}>"

    def resent_message_id(self, message: str, n: int) -> str:
        return f"<{message}.resent{n}.{self.nonce}@{ID_DOMAIN}>"

    def transaction_id(self, n: int) -> str:
        return f"mc{self.nonce}t{n}"

    def transaction_id_in(self, trace: str) -> str | None:
        """This example's transaction id in the text of a trace field, if it names one."""
        for found in _TRANSACTION_ID.finditer(trace):
            if found[2] == self.nonce:
                return found[1]
        return None

    def symbol_of(self, address: str) -> str:
        """The story's name for an address, for readable reports."""
        local, _, domain = address.lower().partition("@")
        if domain == self.sut_domain:
            reverse = {v.lower(): k for k, v in self.pool.items()}
            return reverse.get(local) or local.removeprefix(f"{self.nonce}_".lower())
        if domain == LIST_HOST:
            return local.upper() if not local.endswith("-bounces") else local.replace("l", "L", 1)
        return local
