"""Fixtures of the identity tests (defined in ``identity_helpers``)."""

from identity_helpers import clock, db_target, store

__all__ = ["clock", "db_target", "store"]
