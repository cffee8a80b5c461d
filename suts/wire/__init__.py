"""The wire layer: inject SMTP/LMTP, serve SMTP/LMTP, read mailboxes, wait for quiet.

Self-contained (stdlib and aiosmtpd only): nothing here imports the rest of mailconform.
"""

from suts.wire.client import Injector, check_reachable
from suts.wire.mailboxes import MailboxError, MailboxReader, open_mailbox
from suts.wire.quiescence import Quiet, wait_for, wait_quiet
from suts.wire.replies import ProtocolError, Reply, TransactionReply
from suts.wire.server import DeliveryHandler, EmbeddedServer

__all__ = [
    "DeliveryHandler",
    "EmbeddedServer",
    "Injector",
    "MailboxError",
    "MailboxReader",
    "ProtocolError",
    "Quiet",
    "Reply",
    "TransactionReply",
    "check_reachable",
    "open_mailbox",
    "wait_for",
    "wait_quiet",
]
