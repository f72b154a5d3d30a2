"""Ask a running app over HTTP (its `POST /api/ask` route), with no dependency beyond the standard library.

One kept-alive connection per thread and server, so a parallel evaluation opens a handful of connections
instead of one per question.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse

from .errors import QAError


class RemoteError(QAError):
    """The app could not be reached or answered with an error (`status`: its HTTP status, when it answered)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


_local = threading.local()


def _connection(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    pool = _local.__dict__.setdefault("connections", {})
    conn = pool.get((scheme, netloc))
    if conn is None:
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = pool[(scheme, netloc)] = cls(netloc, timeout=timeout)
    return conn


def _drop_connection(scheme: str, netloc: str) -> None:
    conn = _local.__dict__.get("connections", {}).pop((scheme, netloc), None)
    if conn is not None:
        conn.close()


def ask_remote(url: str, question: str, k: int = 3, *, auth: tuple[str, str] | None = None, timeout: float = 60,
               history: list[dict] | None = None, article: str | list[str] | None = None) -> dict:
    """POST {"question", "k", "history"?, "article"?} to URL/api/ask: the same JSON as `qa ask --json`. With
    `auth` (user, password), HTTP Basic credentials for an app started with QA_AUTH."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteError(f"{url!r} is not an http(s) URL; give the app's address, e.g. http://127.0.0.1:7860.")
    path = parts.path.rstrip("/") + "/api/ask"
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    payload: dict = {"question": question, "k": k}
    if history:
        payload["history"] = history
    if article is not None:
        payload["article"] = article
    body = json.dumps(payload)
    for attempt in (1, 2):  # a kept-alive connection the server has closed meanwhile fails once; reconnect
        conn = _connection(parts.scheme, parts.netloc, timeout)
        try:
            conn.request("POST", path, body=body.encode("utf-8"), headers=headers)
            resp = conn.getresponse()
            status, data = resp.status, resp.read()
            break
        except (http.client.HTTPException, OSError) as exc:
            _drop_connection(parts.scheme, parts.netloc)
            if attempt == 2 or isinstance(exc, TimeoutError):
                raise RemoteError(f"Cannot reach the app at {url} ({exc}); is it running? Start it with `python app.py`.") from None
    try:
        result = json.loads(data)
    except ValueError:
        result = None
    if status == 200 and isinstance(result, dict):
        return result
    message = result.get("error") if isinstance(result, dict) else None
    if status == 401 and auth:
        raise RemoteError(f"The app at {url} refused the login of user {auth[0]!r} (HTTP 401); check the credentials.")
    if status == 401:
        raise RemoteError(f"The app at {url} asks for a login (HTTP 401): pass --user NAME and set QA_PASSWORD.")
    if status == 429:
        raise RemoteError(f"The app at {url} refuses logins for now after too many failed ones (HTTP 429): {message}")
    if status == 404 and message:  # an article the question is restricted to is not in the index
        raise RemoteError(f"The app refused {question[:80]!r} (HTTP 404): {message}", 404)
    if status == 404:
        raise RemoteError(f"The app at {url} has no /api/ask route (HTTP 404); is it article-qa's `python app.py`?")
    if message:
        raise RemoteError(f"The app refused {question[:80]!r} (HTTP {status}): {message}")
    raise RemoteError(f"The app at {url} answered HTTP {status} without a result for {question[:80]!r}.")
