"""article-qa: question answering over news articles, answers quoted from the article with citations."""

from .config import Settings, resolve_settings
from .engine import Engine
from .errors import (
    ArticleError,
    ConfigError,
    GoldSetError,
    IndexCorruptError,
    IndexMissingError,
    QAError,
    QuestionError,
    StaleIndexError,
)
from .types import Answer, Article, Chunk, Citation, Passage, Span
from .validation import AskRequest, check_question, parse_ask_request

__all__ = [
    "Answer", "Article", "AskRequest", "ArticleError", "Chunk", "Citation", "ConfigError", "Engine", "GoldSetError",
    "IndexCorruptError", "IndexMissingError", "Passage", "QAError", "QuestionError", "Settings", "Span",
    "StaleIndexError", "check_question", "parse_ask_request", "resolve_settings",
]
