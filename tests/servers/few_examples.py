"""A pytest plugin for the self-tests: N Hypothesis examples per property (MAILCONFORM_TEST_EXAMPLES).

The servers under tests/servers/ file mail up to seconds late on purpose; a
handful of examples per invariant shows whether the suite judges them right
without making the self-tests take minutes.  Nothing else changes: the SUT's
config is the user's, defaults included.
"""

import os

import pytest
from hypothesis import settings


@pytest.hookimpl(trylast=True)  # after the mailconform plugin has chosen its profile
def pytest_configure(config: pytest.Config) -> None:
    from mailconform.plugin import SETTINGS  # loaded by now; imported earlier, pytest could not rewrite it

    examples = int(os.environ.get("MAILCONFORM_TEST_EXAMPLES", "6"))
    config.stash[SETTINGS] = settings(config.stash[SETTINGS], max_examples=examples, database=None)
