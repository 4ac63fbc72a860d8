"""One exception type for every user-facing mistake, so the CLI can print it without a traceback."""


class MedlibError(Exception):
    """A problem the user can fix (bad name, missing file, wrong option); the message says how."""
