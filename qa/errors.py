"""The library's exceptions. Only the CLI and the app turn them into user-facing text."""

from __future__ import annotations


class QAError(Exception):
    """Base class: a problem the user can fix. The message says what, the offending value and the fix."""


class ArticleError(QAError):
    """An article file or folder cannot be read as an article."""


class ArticleNotFoundError(QAError):
    """An article id that is not in the index."""


class DuplicateArticleError(ArticleError):
    """The article is already in the index (under `article_id`)."""

    def __init__(self, message: str, article_id: str) -> None:
        super().__init__(message)
        self.article_id = article_id


class ArticleTooLargeError(ArticleError):
    """An article over the size limit, or one article too many."""


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


class StoreUnavailableError(QAError):
    """The archive's store (Qdrant) cannot be reached or refused a request; nothing was changed by the failed call."""


class StaleIndexError(QAError):
    """The index no longer matches the articles or settings, and rebuilding was not allowed."""


class QuestionError(QAError):
    """The question is empty, too long or not text."""


class GoldSetError(QAError):
    """A gold question file is malformed."""


_HTTP_STATUS: tuple[tuple[type[QAError], int], ...] = (
    (QuestionError, 400),
    (DuplicateArticleError, 409),
    (ArticleTooLargeError, 413),
    (ArticleError, 400),
    (ArticleNotFoundError, 404),
    (IndexBusyError, 503),
    (StoreUnavailableError, 503),
)


def http_status(exc: QAError) -> int:
    """The HTTP status for a library error: 4xx for the caller's input, 503 for a busy index, else 500."""
    for kind, status in _HTTP_STATUS:
        if isinstance(exc, kind):
            return status
    return 500
