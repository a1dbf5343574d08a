"""The one error type for input a user can fix (a bad file, folder, id or option).

The CLI maps it to its bad-input exit code by type, never by message text.
"""


class UserError(ValueError):
    """Bad input: the message names what was wrong and what was expected."""


class OutputFolderError(UserError):
    """An output folder that cannot take what a command writes (a file, a folder this user cannot write, one holding other things)."""
