"""Who may open the dashboard: the login config file, password hashes, the trusted proxy header, and the
rule that decides whether ``inspection dashboard`` may start at all.

Two ways to sign in, one at a time:

* **a login config file** (``--auth-config users.yaml``): usernames with bcrypt password hashes and the key
  that signs the re-login cookie, in streamlit-authenticator's format (docs/dashboard.md). The pages show
  only the login form until a user signs in.
* **a trusted proxy header** (``--auth-header X-Forwarded-User``): a login proxy on the same machine signs
  users in and passes the user name in a header; pages without the header show nothing. Any client can send
  any header, so this only protects a dashboard that listens on loopback, reachable only through the proxy.

Without either, the dashboard serves loopback only; ``--insecure-no-auth`` opens it to the network anyway.
Streamlit is not imported here; the login form itself is drawn by :func:`inspection.dashboard.ui.require_login`.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from inspection.dashboard.config import AuthSettings

BCRYPT_RE = re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")
HEADER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
COOKIE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_COOKIE_NAME = "inspection_dashboard"
DEFAULT_EXPIRY_DAYS = 7.0
MIN_COOKIE_KEY = 32  # characters; the key signs the re-login cookie (HS256), so it must not be guessable
MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further
SETUP_HINT = (
    "configure a login with --auth-config users.yaml (user names and bcrypt password hashes; make a hash with "
    "`inspection dashboard --hash-password`, file format in docs/dashboard.md), or put a login proxy in front "
    "and pass --auth-header X-Forwarded-User with --host 127.0.0.1"
)


class AuthConfigError(ValueError):
    """The login configuration cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class LoginConfig:
    """A checked login config file: streamlit-authenticator's ``credentials`` and cookie settings."""

    credentials: dict[str, Any]
    cookie_name: str
    cookie_key: str
    cookie_expiry_days: float

    @property
    def usernames(self) -> list[str]:
        return sorted(self.credentials["usernames"])


def _mapping(value: Any, where: str, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AuthConfigError(f"{path}: {where} must be a mapping, got {type(value).__name__}")
    return value


def _users(section: Any, path: Path) -> dict[str, dict[str, Any]]:
    """The ``credentials.usernames`` mapping, user names lowercased (the login form lowercases them too)."""
    usernames = _mapping(
        _mapping(section, "'credentials'", path).get("usernames"), "'credentials.usernames'", path
    )
    if not usernames:
        raise AuthConfigError(f"{path}: 'credentials.usernames' lists no user; add at least one")
    users: dict[str, dict[str, Any]] = {}
    for name, entry in usernames.items():
        key = str(name).strip().lower()
        user = dict(_mapping(entry, f"user {name!r}", path))
        password = user.get("password")
        if not isinstance(password, str) or not BCRYPT_RE.match(password):
            raise AuthConfigError(
                f"{path}: user {name!r} has no bcrypt password hash (plain-text passwords are refused); "
                "make one with `inspection dashboard --hash-password` and paste it as 'password'"
            )
        if key in users:
            raise AuthConfigError(f"{path}: user {name!r} is listed twice (user names ignore case)")
        users[key] = user
    return users


def _cookie(section: Any, path: Path) -> tuple[str, str, float]:
    cookie = _mapping(section if section is not None else {}, "'cookie'", path)
    key = cookie.get("key")
    if not isinstance(key, str) or len(key) < MIN_COOKIE_KEY:
        raise AuthConfigError(
            f"{path}: 'cookie.key' must be a random secret of at least {MIN_COOKIE_KEY} characters (it signs "
            "the re-login cookie); make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    name = str(cookie.get("name", DEFAULT_COOKIE_NAME))
    if not COOKIE_NAME_RE.match(name):
        raise AuthConfigError(f"{path}: 'cookie.name' {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    try:
        days = float(cookie.get("expiry_days", DEFAULT_EXPIRY_DAYS))
    except (TypeError, ValueError) as e:
        raise AuthConfigError(
            f"{path}: 'cookie.expiry_days' must be a number of days (0: sign in every visit)"
        ) from e
    if days < 0:
        raise AuthConfigError(f"{path}: 'cookie.expiry_days' must be 0 or more, got {days}")
    return name, key, days


def load_login_config(path: str | Path) -> LoginConfig:
    """Read and check a login config file (format in docs/dashboard.md).

    Raises:
        AuthConfigError: the file is missing or unreadable, is not YAML, lists no user, holds a password that
            is not a bcrypt hash, or has no cookie key of at least 32 characters.
    """
    path = Path(path).expanduser()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise AuthConfigError(f"cannot read the login config {path}: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise AuthConfigError(f"the login config {path} is not valid YAML: {e}") from e
    doc = _mapping(raw, "the file", path)
    users = _users(doc.get("credentials"), path)
    name, key, days = _cookie(doc.get("cookie"), path)
    return LoginConfig({"usernames": users}, name, key, days)


def hash_password(password: str) -> str:
    """A bcrypt hash of ``password`` for the login config file.

    Surrounding spaces are dropped, as the login form drops them from what is typed.

    Raises:
        AuthConfigError: the password is shorter than 8 characters or longer than bcrypt's 72 bytes.
    """
    password = password.strip()
    if len(password) < MIN_PASSWORD:
        raise AuthConfigError(
            f"the password must have at least {MIN_PASSWORD} characters, got {len(password)}"
        )
    data = password.encode("utf-8")
    if len(data) > MAX_PASSWORD_BYTES:
        raise AuthConfigError(
            f"the password is {len(data)} bytes; bcrypt uses at most {MAX_PASSWORD_BYTES}, so choose a shorter one"
        )
    return bcrypt.hashpw(data, bcrypt.gensalt()).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches the bcrypt ``hashed`` (as the login form checks it)."""
    try:
        return bcrypt.checkpw(password.strip().encode("utf-8"), hashed.encode("ascii"))
    except ValueError:
        return False


def header_user(headers: Mapping[str, str], name: str) -> str | None:
    """The signed-in user the proxy named in header ``name`` (any case), or None when it is absent or blank."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and str(value).strip():
            return str(value).strip()
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1`` or ``localhost``)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access_problem(host: str, settings: AuthSettings, *, insecure_no_auth: bool = False) -> str | None:
    """Why the dashboard must not start with these settings, or None when it may.

    It may start on loopback without a login (as on a developer's machine), and anywhere with a login config.
    A trusted header only protects a dashboard that listens on loopback behind its proxy. Off loopback with
    no login it starts only with ``insecure_no_auth``.
    """
    if settings.config_path is not None and settings.header is not None:
        return "choose one login method: --auth-config or --auth-header, not both"
    if settings.header is not None:
        if not HEADER_RE.match(settings.header):
            return f"--auth-header {settings.header!r} is not a header name (letters, digits and '-')"
        if not is_loopback(host):
            return (
                f"--auth-header trusts a header that any client can send, so the dashboard must listen on "
                f"loopback behind the proxy that sets it; use --host 127.0.0.1 (got --host {host})"
            )
        return None
    if settings.config_path is not None or is_loopback(host) or insecure_no_auth:
        return None
    return (
        f"refusing to serve the dashboard on {host} without a login: every station, part, photo and the "
        f"database address would be open to anyone who can reach this machine. To fix it, {SETUP_HINT}. "
        "--insecure-no-auth serves it without a login anyway."
    )


MAX_FAILED_SIGN_INS = 10  # within SIGN_IN_WINDOW_S from one client address, before it must wait
SIGN_IN_WINDOW_S = 15 * 60.0


class SignInThrottle:
    """Failed sign-ins per client address: after ``limit`` within ``window_s`` seconds, that address must wait
    until the oldest of them is ``window_s`` old, so passwords cannot be tried by the thousand. One per
    dashboard server (shared by its sessions, safe across their threads); a successful sign-in does not reset
    it, so a guesser who knows one password cannot use it to keep trying others from the same address."""

    def __init__(
        self,
        limit: int = MAX_FAILED_SIGN_INS,
        window_s: float = SIGN_IN_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        return failures

    def wait_s(self, client: str) -> float:
        """Seconds ``client`` must wait before it may try again (0: it may now)."""
        with self._lock:
            now = self.clock()
            failures = self._recent(client, now)
            if not failures:
                del self._failures[client]  # addresses whose failures are all old are forgotten
            return 0.0 if len(failures) < self.limit else failures[0] + self.window_s - now

    def failed(self, client: str) -> None:
        """Count one failed sign-in from ``client``."""
        with self._lock:
            now = self.clock()
            self._recent(client, now).append(now)
