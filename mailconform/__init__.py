"""mailconform: property-based conformance tests for mail delivery systems.

Installed, every part lives under this one name (`mailconform.specs`,
`mailconform.suts`, `mailconform.strategies`, `mailconform.conformance`), so it
never collides with a user project's own `specs`, `tests` or `strategies`. In
the checkout those names are symbolic links to the top-level directories.
"""

__version__ = "0.2.0"
