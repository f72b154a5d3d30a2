"""The library's exceptions. Only the CLI and the app turn them into user-facing text."""

from __future__ import annotations


class QAError(Exception):
    """Base class: a problem the user can fix. The message says what, the offending value and the fix."""


class ArticleError(QAError):
    """An article file or folder cannot be read as an article."""


class ConfigError(QAError):
    """A setting (argument or QA_* variable) has an invalid value."""


class IndexMissingError(QAError):
    """There is no index where one was expected."""


class IndexCorruptError(QAError):
    """An index file is truncated, corrupt or of an unknown format."""


class IndexWriteError(QAError):
    """The index folder cannot be written (read-only, full, not a folder); the previous index is intact."""


class IndexBusyError(QAError):
    """Another process holds the index folder's writer lock for longer than the caller would wait."""


class StaleIndexError(QAError):
    """The index no longer matches the articles or settings, and rebuilding was not allowed."""


class QuestionError(QAError):
    """The question is empty, too long or not text."""


class GoldSetError(QAError):
    """A gold question file is malformed."""
