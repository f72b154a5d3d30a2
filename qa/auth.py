"""Logins: the QA_AUTH users, HTTP Basic credentials, and throttling of wrong passwords.

Throttling uses the `limits` library (moving windows in memory): after FAILURES_PER_USER wrong passwords for
one user from one client address within a minute, that pair gets HTTP 429 with Retry-After until the window
has room; one address gets at most FAILURES_PER_ADDRESS failures a minute over all users, one user at most
FAILURES_PER_NAME over all addresses (a spread-out attack on one account). Another user, or the same user
from elsewhere, still logs in. Failures are counted in the app's process, which checks every login.
"""

from __future__ import annotations

import base64
import hmac
import math
import time
from dataclasses import dataclass

from .errors import ConfigError

FAILURES_PER_USER = 5  # per user and client address, per minute
FAILURES_PER_ADDRESS = 30  # per client address over all user names, per minute
FAILURES_PER_NAME = 50  # per user name over all addresses, per minute


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """QA_AUTH="user1:pass1,user2:pass2" -> [("user1", "pass1"), ("user2", "pass2")]; unset or "" -> None.

    Users may not contain ':' and passwords may not contain ','. Passwords never appear in messages.
    """
    if value is None or value == "":
        return None
    pairs = []
    for i, entry in enumerate(value.split(","), start=1):
        user, sep, password = entry.partition(":")
        user = user.strip()
        if not sep or not user or not password:
            raise ConfigError(
                f"QA_AUTH entry {i} of {value.count(',') + 1} is not user:password (user {user!r}); "
                'set QA_AUTH="user1:pass1,user2:pass2" or unset it to run without login.'
            )
        if any(u == user for u, _ in pairs):
            raise ConfigError(f"QA_AUTH names user {user!r} twice; give each user once.")
        pairs.append((user, password))
    return pairs


def check_password(user: str, password: str, users: list[tuple[str, str]]) -> bool:
    """Whether (user, password) is one of `users`, comparing with every entry in constant time per entry."""
    ok = False
    for u, p in users:
        ok |= hmac.compare_digest(user.encode("utf-8", "surrogatepass"), u.encode()) & \
            hmac.compare_digest(password.encode("utf-8", "surrogatepass"), p.encode())
    return ok


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` header, or None when there is none or it is malformed."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


@dataclass(frozen=True)
class Refusal:
    """A login refused before its password is checked: too many failures; retry after `retry_after` seconds."""

    retry_after: int
    message: str


class LoginThrottle:
    """Counts failed logins per (user, address), per address and per user name; `check` says whether a login
    may be tried now. Create it in the serving process after ask workers are forked (the storage keeps a timer
    thread)."""

    def __init__(self, per_user: int = FAILURES_PER_USER, per_address: int = FAILURES_PER_ADDRESS,
                 per_name: int = FAILURES_PER_NAME) -> None:
        from limits import RateLimitItemPerMinute
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._rules = [
            (RateLimitItemPerMinute(per_user), lambda user, addr: ("pair", user, addr)),
            (RateLimitItemPerMinute(per_address), lambda user, addr: ("address", addr)),
            (RateLimitItemPerMinute(per_name), lambda user, addr: ("name", user)),
        ]

    def check(self, user: str, address: str) -> Refusal | None:
        """None when a login of `user` from `address` may be tried; else how long to wait."""
        wait = 0.0
        for item, key in self._rules:
            if not self._limiter.test(item, *key(user, address)):
                reset, _ = self._limiter.get_window_stats(item, *key(user, address))
                wait = max(wait, reset - time.time())
        if wait <= 0:
            return None
        seconds = max(1, math.ceil(wait))
        return Refusal(seconds, f"Too many failed logins; try again in {seconds} s.")

    def failed(self, user: str, address: str) -> None:
        for item, key in self._rules:
            self._limiter.hit(item, *key(user, address))
