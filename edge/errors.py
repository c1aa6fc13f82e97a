"""User-facing errors: the CLI prints them as one line and exits with code 2 (no traceback)."""


class EdgeError(Exception):
    """Bad input a user can fix: a missing file, a malformed bundle, a source that cannot be opened."""
