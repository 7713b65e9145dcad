"""Errors caused by what a user typed or gave us, as opposed to bugs in qtran.

The CLI prints a UserError as one line and exits with status 2; anything else is a bug and
keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from the user: unknown name, malformed file, out-of-range value."""
