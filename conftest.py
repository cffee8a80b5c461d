"""The in-checkout pytest face: the same plugin `pip install` registers through `pytest11`."""

pytest_plugins = ["mailconform.plugin"]
