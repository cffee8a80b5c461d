"""The normative layer: scenarios, the reference delivery model, invariants.

Nothing here does I/O or knows about a particular server.
"""
