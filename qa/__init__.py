"""article-qa: question answering over news articles, answers quoted from the article with citations."""

from .config import Settings, resolve_settings
from .engine import Engine, check_question
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

__all__ = [
    "Answer", "Article", "ArticleError", "Chunk", "Citation", "ConfigError", "Engine", "GoldSetError",
    "IndexCorruptError", "IndexMissingError", "Passage", "QAError", "QuestionError", "Settings", "Span",
    "StaleIndexError", "check_question", "resolve_settings",
]
