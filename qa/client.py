"""Ask a running app over HTTP (Gradio's `ask` endpoint), with no dependency beyond the standard library."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from functools import lru_cache

from .errors import QAError


class RemoteError(QAError):
    """The app could not be reached or answered with an error."""


@lru_cache(maxsize=8)
def _opener(base: str, auth: tuple[str, str] | None, timeout: float) -> urllib.request.OpenerDirector:
    """An HTTP opener; with `auth`, logged in through Gradio's login form (a session cookie)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    if auth:
        form = urllib.parse.urlencode({"username": auth[0], "password": auth[1]}).encode()
        try:
            opener.open(urllib.request.Request(f"{base}/login", data=form, method="POST"), timeout=timeout).read()
        except urllib.error.HTTPError as exc:
            raise RemoteError(f"The app at {base} refused the login of user {auth[0]!r} (HTTP {exc.code}); check the credentials.") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RemoteError(f"Cannot reach the app at {base} ({exc}); is it running? Start it with `python app.py`.") from None
    return opener


def ask_remote(url: str, question: str, k: int = 3, *, auth: tuple[str, str] | None = None, timeout: float = 60) -> dict:
    """POST /gradio_api/call/ask, then read the result event: the same JSON as `qa ask --json`."""
    base = url.rstrip("/")
    opener = _opener(base, auth, timeout)
    headers = {"Content-Type": "application/json"}
    body = json.dumps({"data": [question, k]}).encode()
    try:
        req = urllib.request.Request(f"{base}/gradio_api/call/ask", data=body, headers=headers, method="POST")
        with opener.open(req, timeout=timeout) as resp:
            event_id = json.loads(resp.read())["event_id"]
        with opener.open(urllib.request.Request(f"{base}/gradio_api/call/ask/{event_id}"), timeout=timeout) as resp:
            stream = resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        hint = " (the app asks for a login: pass --user NAME and set QA_PASSWORD)" if exc.code == 401 else ""
        raise RemoteError(f"The app at {url} answered HTTP {exc.code}{hint}.") from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise RemoteError(f"Cannot reach the app at {url} ({exc}); is it running? Start it with `python app.py`.") from None
    event = None
    for line in stream.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = line[5:].strip()
            if event == "error":
                try:
                    message = json.loads(data).get("error") or data
                except (ValueError, AttributeError):
                    message = data
                raise RemoteError(f"The app refused {question[:80]!r}: {message}")
            return json.loads(data)[0]
    raise RemoteError(f"The app at {url} sent no result for {question[:80]!r}.")
