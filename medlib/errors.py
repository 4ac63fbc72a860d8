"""One exception type for every user-facing mistake, so the CLI can print it without a traceback."""

import warnings


class MedlibError(Exception):
    """A problem the user can fix (bad name, missing file, wrong option); the message says how."""


def permission_denied(path, what: str = "") -> MedlibError:
    """An unreadable file is not a damaged one: one line saying so, and how to fix it."""
    return MedlibError(
        f"{what}{path} cannot be opened (permission denied); make it readable (chmod u+r), or pass another."
    )


class MedlibWarning(UserWarning):
    """Something skipped or changed that the user should know of (a damaged record, a duplicate); the CLI prints it
    as one `medlib: warning:` line."""


def warn(message: str) -> None:
    """Issue a MedlibWarning pointing at the caller's caller (the code that asked for the skipped thing)."""
    warnings.warn(message, MedlibWarning, stacklevel=3)
