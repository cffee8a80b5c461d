"""The bytes the suite sends, against the email library's rendering of the same content."""

from email.message import Message

from hypothesis import given
from hypothesis import strategies as st

from mailconform.specs.content import WIRE, Content
from mailconform.specs.model import plan
from mailconform.specs.naming import Naming
from mailconform.specs.scenario import Scenario
from mailconform.strategies import scenarios


def _rendered_by_the_library(content: Content) -> bytes:
    message = Message(policy=WIRE)
    for name, value in content.append(("Content-Type", 'text/plain; charset="utf-8"'),
                                      ("Content-Transfer-Encoding", "7bit"), ("MIME-Version", "1.0")).headers:
        message[name] = value
    message.set_payload(content.body)
    return message.as_bytes()


@given(scenarios())
def test_every_transaction_is_sent_as_the_library_renders_it(scenario: Scenario) -> None:
    """Each transaction's bytes are those `Message.as_bytes` makes of its content."""
    for tx in plan(scenario, Naming("n0"), ("mx", "submission")).injections:
        assert tx.data == _rendered_by_the_library(tx.content)


@given(st.text("ab \n\r", max_size=12), st.sampled_from(["short", "word " * 30, "a\n b"]))
def test_odd_bodies_and_long_fields_are_sent_as_the_library_renders_them(body: str, value: str) -> None:
    """Bare CR or LF line ends, a last line with no end, a field too long for one line."""
    content = Content((("Subject", value), ("To", "u1@isp.test")), body)
    assert content.to_bytes() == _rendered_by_the_library(content)
