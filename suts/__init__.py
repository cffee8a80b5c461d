"""Systems under test: the built-in ones, and adapters for any server."""
