"""Concrete names: an example finds its own transaction ids, and only its own."""

from mailconform.specs.naming import Naming
from mailconform.specs.wording import counted


def test_transaction_id_is_found_for_its_own_nonce_only() -> None:
    """A trace naming this example's transaction yields its id; another example's (an earlier
    example's copy delivered late into a reused mailbox) yields nothing."""
    naming, other = Naming("preflight"), Naming("0a1b2c3d")
    trace = f"from suite by mx.isp.test with ESMTP id {naming.transaction_id(12)}; Tue, 1 Dec 2026"
    assert naming.transaction_id_in(trace) == "mcpreflightt12"
    assert other.transaction_id_in(trace) is None
    assert other.transaction_id_in(f"by a id {naming.transaction_id(1)} by b id {other.transaction_id(3)}") \
        == "mc0a1b2c3dt3"


def test_counts_read_singular_for_exactly_one() -> None:
    """'1 play judged 1 example', never '1 plays judged 1 examples'; irregular plurals given."""
    assert f"{counted(1, 'play')} judged {counted(1, 'example')}" == "1 play judged 1 example"
    assert f"{counted(7, 'play')} judged {counted(0, 'example')}" == "7 plays judged 0 examples"
    assert counted(1, "copy", "copies") == "1 copy" and counted(2, "copy", "copies") == "2 copies"
