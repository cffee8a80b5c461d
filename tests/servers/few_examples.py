"""A pytest plugin for the self-tests: N Hypothesis examples per property (MAILCONFORM_TEST_EXAMPLES).

The servers under tests/servers/ file mail up to seconds late on purpose; a
handful of examples per invariant shows whether the suite judges them right
without making the self-tests take minutes.  Nothing else changes: the SUT's
config is the user's, defaults included.
"""

import os

import pytest
from hypothesis import settings


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    settings.register_profile("self-test", parent=settings.default, database=None,
                              max_examples=int(os.environ.get("MAILCONFORM_TEST_EXAMPLES", "6")))
    settings.load_profile("self-test")
