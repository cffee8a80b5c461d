"""The reference model as an in-process SUT: no network, fastest feedback."""

from __future__ import annotations

from collections import defaultdict
from functools import partial

from mailconform.specs.model import Plan, Role
from mailconform.specs.naming import Naming
from mailconform.specs.observation import Observation, observe
from mailconform.suts.base import ReplyLog
from mailconform.suts.policies import policy as named_policy
from mailconform.suts.reference import ReferenceServer, file_at_remote_hosts
from mailconform.suts.wire.replies import Reply, TransactionReply


class MemoryStore:
    def __init__(self) -> None:
        self.mailboxes: defaultdict[str, list[bytes]] = defaultdict(list)

    def file(self, mailbox: str, raw: bytes) -> None:
        self.mailboxes[mailbox.lower()].append(raw)


class InProcessSUT:
    transport = "in-process"
    roles: frozenset[Role] = frozenset({"mx", "submission"})
    expands_aliases = True

    def __init__(self, policy_name: str = "reference") -> None:
        named_policy(policy_name)  # fail early on an unknown name
        self.policy_name = policy_name
        self.name = "reference" if policy_name == "reference" else f"model:{policy_name}"

    def naming(self, nonce: str) -> Naming:
        return Naming(nonce)

    def play(self, plan: Plan) -> Observation:
        store = MemoryStore()
        server = ReferenceServer(named_policy(self.policy_name), store,
                                 partial(file_at_remote_hosts, store))
        server.aliases = dict(plan.aliases)
        log = ReplyLog()
        for tx in plan.injections:
            submission = tx.entry == "submission"
            rcpts = {r: Reply(250, "2.1.5 ok") if submission else server.rcpt(r) for r in tx.rcpts}
            accepted = [r for r, reply in rcpts.items() if reply.accepted]
            handle = server.submit if submission else server.deliver
            finals = handle(tx.mail_from, accepted, tx.data) if accepted else []
            log.record(tx.id, TransactionReply(Reply(250, "2.1.0 ok"), rcpts,
                                               dict(zip(accepted, finals, strict=True)), ()))
        return observe(store.mailboxes, plan.naming.transaction_id_in, log.accepted, log.said)

    def recheck(self, plan: Plan) -> Observation:
        """In-process delivery is complete when each call returns: nothing can arrive late."""
        return self.play(plan)

    def preflight(self) -> None:
        pass  # nothing to reach

    def close(self) -> None:
        pass
