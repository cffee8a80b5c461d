"""Fixtures for the wire layer's tests."""

from tests.wire.dovecot import dovecot

__all__ = ["dovecot"]
