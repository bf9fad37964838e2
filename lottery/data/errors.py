"""Exceptions of the data stage.

They all derive from :class:`DataError`, so that the command line can catch *one* type
and print one line instead of a traceback: these are problems with the user's files or
network, not bugs.
"""

from __future__ import annotations


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
