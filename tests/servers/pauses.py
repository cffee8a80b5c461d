"""A pytest plugin for the self-tests: a pause after each conformance test (MAILCONFORM_TEST_PAUSE s).

With the search, every invariant's verdict is ready at once and the tests report within
milliseconds of each other; a pause between them lets a self-test stop a run midway.
"""

import os
import time

import pytest


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if item.get_closest_marker("invariant"):
        time.sleep(float(os.environ.get("MAILCONFORM_TEST_PAUSE", "5")))
