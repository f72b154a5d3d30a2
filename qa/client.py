"""Ask a running app over HTTP (Gradio's `ask` endpoint), with no dependency beyond the standard library."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from .errors import QAError


class RemoteError(QAError):
    """The app could not be reached or answered with an error."""


def ask_remote(url: str, question: str, k: int = 3, *, auth: tuple[str, str] | None = None, timeout: float = 60) -> dict:
    """POST /gradio_api/call/ask, then read the result event: the same JSON as `qa ask --json`."""
    base = url.rstrip("/")
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    body = json.dumps({"data": [question, k]}).encode()
    try:
        req = urllib.request.Request(f"{base}/gradio_api/call/ask", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            event_id = json.loads(resp.read())["event_id"]
        req = urllib.request.Request(f"{base}/gradio_api/call/ask/{event_id}", headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            stream = resp.read().decode("utf-8")
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise RemoteError(f"Cannot reach the app at {url} ({exc}); is it running? Start it with `python app.py`.") from None
    event = None
    for line in stream.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = line[5:].strip()
            if event == "error":
                raise RemoteError(f"The app answered with an error for {question!r}: {data}")
            return json.loads(data)[0]
    raise RemoteError(f"The app at {url} sent no result for {question!r}.")
