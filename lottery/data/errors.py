"""Exceptions of the data stage.

They all derive from :class:`DataError`, so that the command line can catch *one* type
and print one line instead of a traceback: these are problems with the user's files or
network, not bugs. Data-quality notes are :class:`DataWarning` warnings, printed as one
line too.
"""

from __future__ import annotations

import warnings


class DataError(Exception):
    """Base class: a data problem the user can fix (files, network, sizes)."""


class DataFormatError(DataError, ValueError):
    """A malformed record; the message names the file, the line and the field."""

    def __init__(self, source: str, line: int, field: str, problem: str):
        self.source, self.line, self.field, self.problem = str(source), line, field, problem
        super().__init__(f"{self.source}:{line}: field {field!r}: {problem}")

    def __reduce__(self):  # picklable, so a worker process can report it to the parent
        return (type(self), (self.source, self.line, self.field, self.problem))


class DataUnavailableError(DataError, RuntimeError):
    """A data file could not be obtained or failed its checksum; says what to do."""


class DataSettingsError(DataError, ValueError):
    """Data settings that cannot be satisfied (e.g. an odd split size)."""


class NotEnoughReviewsError(DataSettingsError):
    """A domain has too few reviews of one class for the requested split sizes."""


class UnknownDomainError(DataError, ValueError):
    """A domain (or dataset) name that the registry does not know; lists valid names."""


class DataWarning(UserWarning):
    """A data-quality note (malformed records skipped, tiny splits, replaced bytes).

    Shown as one line, ``lottery: warning: <message>``, without the source file and line
    that Python's default format adds (they point into the readers, not at the data); it
    stays a real warning, so filters, ``catch_warnings`` and the book's collector see it.
    """


_format_other = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for :class:`DataWarning`; any other category as before."""
    if isinstance(category, type) and issubclass(category, DataWarning):
        return f"lottery: warning: {' '.join(str(message).splitlines())}\n"
    return _format_other(message, category, filename, lineno, line)


warnings.formatwarning = _format_warning
