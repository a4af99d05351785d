"""Fixtures of the recordings tests (defined in ``rec_helpers``)."""

from rec_helpers import db_target, env

__all__ = ["db_target", "env"]
