"""The in-checkout pytest face: the same plugin `pip install` registers through `pytest11`."""

import pytest
from hypothesis import settings

pytest_plugins = ["mailconform.plugin"]


def pytest_configure(config: pytest.Config) -> None:
    # The plugin applies its profiles to the conformance properties only; the project's own
    # Hypothesis tests (tests/self) choose theirs here, as any project would.
    settings.load_profile("mailconform-default")
