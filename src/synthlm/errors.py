"""Errors that reach the user.

Anything raised as :class:`UserError` is a problem with the user's input (a config, a spec, a
path, a flag): the CLI prints its message on one line and exits with status 2, without a
traceback. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message names the file, key and allowed values."""

    exit_code = 2


class ConfigError(UserError):
    """A config file, spec or override failed validation."""


class StoreError(UserError):
    """A token store on disk is missing, truncated or inconsistent."""
