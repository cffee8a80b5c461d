"""Reading Maildirs back."""

from __future__ import annotations

import mailbox
import os
from pathlib import Path

from mailconform.suts.wire import open_mailbox

FIRST = b"Message-ID: <1@test>\n\nfirst\n"
SECOND = b"Message-ID: <2@test>\n\nsecond\n"
THIRD = b"Message-ID: <3@test>\n\n.third\n"


def file_at(maildir: mailbox.Maildir, root: Path, raw: bytes, mtime: int, *, seen: bool) -> None:
    """Add `raw` with a given delivery time, in cur/ (seen) or new/."""
    key = maildir.add(mailbox.MaildirMessage(raw))
    if seen:
        message = maildir[key]
        message.set_subdir("cur")
        message.add_flag("S")
        maildir[key] = message
    path = next(root.glob(f"*/{key}*"))
    os.utime(path, (mtime, mtime))


def test_missing_maildir_is_an_empty_mailbox(tmp_path: Path) -> None:
    """A Maildir nobody delivered to yet reads as empty, and clearing it is harmless."""
    reader = open_mailbox(f"maildir:{tmp_path}/never-created")
    assert reader.messages() == []
    reader.clear()


def test_reads_new_and_cur_oldest_first_byte_exact(tmp_path: Path) -> None:
    """Messages in new/ and cur/ come back as stored, ordered by delivery time (not name or folder)."""
    root = tmp_path / "Maildir"
    maildir = mailbox.Maildir(root)
    file_at(maildir, root, THIRD, 1_700_000_300, seen=False)
    file_at(maildir, root, FIRST, 1_700_000_100, seen=True)
    file_at(maildir, root, SECOND, 1_700_000_200, seen=False)
    reader = open_mailbox(f"maildir:{root}")
    assert reader.messages() == [FIRST, SECOND, THIRD]
    assert reader.messages() == [FIRST, SECOND, THIRD]  # reading moved or deleted nothing
    assert len(list((root / "new").iterdir())) == 2


def test_file_bytes_are_not_converted(tmp_path: Path) -> None:
    """A message an MDA stored with CRLF line ends (mailbox.Maildir itself writes LF) reads back as is."""
    root = tmp_path / "Maildir"
    mailbox.Maildir(root)
    crlf = b"Message-ID: <4@test>\r\n\r\nCRLF kept\r\n"
    (root / "new" / "1700000000.M1P1.mda.test").write_bytes(crlf)
    assert open_mailbox(f"maildir:{root}").messages() == [crlf]


def test_clear_empties_the_maildir(tmp_path: Path) -> None:
    """clear() deletes every message in new/ and cur/."""
    root = tmp_path / "Maildir"
    maildir = mailbox.Maildir(root)
    file_at(maildir, root, FIRST, 1_700_000_100, seen=True)
    file_at(maildir, root, SECOND, 1_700_000_200, seen=False)
    reader = open_mailbox(f"maildir:{root}")
    reader.clear()
    assert reader.messages() == []


def test_maildir_plus_plus_folders_are_read_and_named(tmp_path: Path) -> None:
    """filed() reads INBOX then every Maildir++ folder (`.Name`, shown as "Name"); clear() empties all."""
    root = tmp_path / "Maildir"
    inbox = mailbox.Maildir(root)
    inbox.add(FIRST)
    inbox.add_folder("Duplicates").add(SECOND)
    inbox.add_folder("Lists.Team").add(THIRD)
    reader = open_mailbox(f"maildir:{root}")
    assert reader.filed() == [("INBOX", FIRST), ("Duplicates", SECOND), ("Lists.Team", THIRD)]
    assert reader.messages() == [FIRST]
    reader.clear()
    assert reader.filed() == []
