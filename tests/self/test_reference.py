"""The reference server's own handling of bytes, against the email library's."""

from email import message_from_bytes

from hypothesis import given
from hypothesis import strategies as st

from mailconform.specs.content import WIRE
from mailconform.suts.policies import policy
from mailconform.suts.reference import without_bcc

_NAMES = st.sampled_from(["To", "Cc", "Bcc", "bcc", "BCC", "Subject", "X-Bcc", "Bcc-Note"])
_VALUES = st.lists(st.sampled_from(["u1@isp.test", "r1@remote.example", "a, b", "=?utf-8?q?x?="]),
                   min_size=1, max_size=3)


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    """Messages with Bcc fields anywhere, some folded, and a body that mentions Bcc."""
    fields = []
    for name, values in draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=6)):
        fields.append(f"{name}: {values[0]}" + "".join(f",\r\n\t{v}" for v in values[1:]) + "\r\n")
    body = draw(st.sampled_from(["", "hello\r\n", "Bcc: in the body\r\n\r\nBcc: again\r\n"]))
    return ("".join(fields) + "Message-ID: <m1@isp.test>\r\n\r\n" + body).encode()


@given(_messages())
def test_without_bcc_drops_the_fields_the_library_deletes(raw: bytes) -> None:
    """Stripping Bcc by bytes leaves the fields and body the library leaves after deleting Bcc."""
    stripped = message_from_bytes(without_bcc(raw), policy=WIRE)
    expected = message_from_bytes(raw, policy=WIRE)
    del expected["Bcc"]
    assert stripped.items() == expected.items()
    assert stripped.get_payload() == expected.get_payload()


def test_without_bcc_keeps_every_other_byte() -> None:
    """A folded Bcc field goes whole; the fields around it and the body keep their bytes."""
    raw = (b"To: u1@isp.test,\r\n  u2@isp.test\r\nBcc: u3@isp.test,\r\n\tu4@isp.test\r\n"
           b"Subject: x\r\n\r\nBcc: stays\r\n")
    assert without_bcc(raw) == b"To: u1@isp.test,\r\n  u2@isp.test\r\nSubject: x\r\n\r\nBcc: stays\r\n"


def test_only_policies_that_decide_on_content_have_the_message_parsed() -> None:
    """The reference and rewriting policies read no message; dedup, quota and Return-Path ones do."""
    assert not policy("reference").reads_content
    assert not policy("leak-bcc").reads_content and not policy("rewrite-message-id").reads_content
    assert all(policy(name).reads_content for name in ("dedup-message-id", "refuse-duplicate",
                                                        "drop-over-quota", "return-path-from-header"))
