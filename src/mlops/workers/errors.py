"""Errors of a job's work, as the queue treats them."""

from __future__ import annotations


class InputError(Exception):
    """The input (or the job itself) is wrong: the job fails at once, since retrying
    cannot help. The message names the row and what was expected."""
