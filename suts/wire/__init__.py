"""The wire layer: inject SMTP/LMTP, serve SMTP/LMTP, read mailboxes, wait for quiet.

Self-contained (stdlib and aiosmtpd only): nothing here imports the rest of mailconform.
"""

from mailconform.suts.wire.client import Injector, Login, Retry, check_reachable
from mailconform.suts.wire.mailboxes import INBOX, Filed, MailboxError, MailboxReader, open_mailbox
from mailconform.suts.wire.quiescence import Quiet, wait_for, wait_quiet
from mailconform.suts.wire.replies import ProtocolError, Reply, TransactionReply
from mailconform.suts.wire.server import DeliveryHandler, EmbeddedServer

__all__ = [
    "INBOX",
    "DeliveryHandler",
    "EmbeddedServer",
    "Filed",
    "Injector",
    "Login",
    "MailboxError",
    "MailboxReader",
    "ProtocolError",
    "Quiet",
    "Reply",
    "Retry",
    "TransactionReply",
    "check_reachable",
    "open_mailbox",
    "wait_for",
    "wait_quiet",
]
