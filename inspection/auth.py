"""Per-station API keys: stations send ``X-API-Key``; the service keeps only SHA-256 hashes of the keys.

Keys come from a config file's ``[api_keys]`` table (``station = "sha256:<hex>"``, or a plain key that is hashed on
load) or from ``INSPECTION_API_KEYS="station-1:key1,station-2:key2"``. Make a hash for the config file with
``inspection serve --hash-key KEY``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "INSPECTION_API_KEYS"
HASH_PREFIX = "sha256:"
STATION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MIN_KEY_LENGTH = 4


class AuthConfigError(ValueError):
    """The API key configuration cannot be used."""


def hash_key(key: str) -> str:
    """The stored form of an API key: ``sha256:<hex digest>``.

    Keys are meant to be long random tokens, so a plain (unsalted) digest is enough to keep the file harmless.
    """
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def valid_station_id(station_id: str) -> bool:
    """Station ids are 1-64 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit."""
    return bool(STATION_ID_RE.fullmatch(station_id))


@dataclass(frozen=True)
class ApiKeys:
    """Station id to key hash; ``station_for(key)`` tells which station a key belongs to."""

    hashes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for station, digest in self.hashes.items():
            if not valid_station_id(station):
                raise AuthConfigError(
                    f"station id {station!r} is not valid; use 1-64 letters, digits, '.', '_' or '-'"
                )
            if not (digest.startswith(HASH_PREFIX) and len(digest) == len(HASH_PREFIX) + 64):
                raise AuthConfigError(
                    f"key hash of station {station!r} must look like 'sha256:<64 hex digits>'"
                )

    def __len__(self) -> int:
        return len(self.hashes)

    def station_for(self, key: str | None) -> str | None:
        """The station this key belongs to, or None. Compares against every hash in constant time."""
        if not key:
            return None
        digest = hash_key(key)
        found = None
        for station, expected in self.hashes.items():
            if hmac.compare_digest(digest, expected):
                found = station
        return found

    def merged(self, other: ApiKeys) -> ApiKeys:
        """Both key sets; ``other`` wins for a station named in both."""
        return ApiKeys({**self.hashes, **other.hashes})

    @classmethod
    def from_mapping(cls, keys: Mapping[str, Any]) -> ApiKeys:
        """From ``{station: key or "sha256:<hex>"}``; plain keys are hashed here and never kept."""
        out = {}
        for station, value in keys.items():
            if not isinstance(value, str) or not value:
                raise AuthConfigError(f"the API key of station {station!r} must be a non-empty string")
            if value.startswith(HASH_PREFIX):
                out[str(station)] = value.lower()
            elif len(value) < MIN_KEY_LENGTH:
                raise AuthConfigError(
                    f"the API key of station {station!r} is shorter than {MIN_KEY_LENGTH} characters"
                )
            else:
                out[str(station)] = hash_key(value)
        return cls(out)

    @classmethod
    def from_env_string(cls, value: str) -> ApiKeys:
        """From ``"station-1:key1,station-2:key2"`` (the ``INSPECTION_API_KEYS`` format)."""
        keys: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            station, sep, key = item.partition(":")
            if not sep or not station.strip() or not key.strip():
                raise AuthConfigError(
                    f"{ENV_VAR} entry {item.split(':')[0]!r}... is not 'station:key'; "
                    f"expected e.g. {ENV_VAR}='station-1:key1,station-2:key2'"
                )
            keys[station.strip()] = key.strip()
        return cls.from_mapping(keys)


def load_api_keys(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> ApiKeys:
    """Keys from a parsed config's ``api_keys`` table, then from ``INSPECTION_API_KEYS`` (which wins per station)."""
    environ = os.environ if environ is None else environ
    keys = ApiKeys()
    table = (config or {}).get("api_keys")
    if table is not None:
        if not isinstance(table, Mapping):
            raise AuthConfigError(
                f"'api_keys' in the config must be a table of station = key, got {type(table).__name__}"
            )
        keys = ApiKeys.from_mapping(table)
    if environ.get(ENV_VAR):
        keys = keys.merged(ApiKeys.from_env_string(environ[ENV_VAR]))
    return keys


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file into a dict."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise AuthConfigError(f"cannot read config file {path}: {e.strerror}") from e
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    elif path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]

        data = tomllib.loads(text)
    else:
        raise AuthConfigError(f"config file {path.name} must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise AuthConfigError(f"config file {path} must hold a table at the top level")
    return data
