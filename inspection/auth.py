"""API keys and their roles: the service keeps only SHA-256 hashes of the keys.

Two roles:

* a **station** key writes and reads its own station's records only. Keys come from a config file's
  ``[api_keys]`` table (``station = "sha256:<hex>"``, or a plain key that is hashed on load) or from
  ``INSPECTION_API_KEYS="station-1:key1,station-2:key2"``;
* an **engineer** key reads every station's records (and, later, labels them). Keys come from
  ``[engineer_keys]`` (``name = "sha256:<hex>"``) or ``INSPECTION_ENGINEER_KEYS="alice:key1,bob:key2"``.

Make a hash for the config file with ``inspection serve --hash-key`` (it reads the key from standard input).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inspection.ingest.ids import STATION_ID_RULE, valid_station_id

ENV_VAR = "INSPECTION_API_KEYS"
ENGINEER_ENV_VAR = "INSPECTION_ENGINEER_KEYS"
HASH_PREFIX = "sha256:"
MIN_KEY_LENGTH = 4
Role = Literal["station", "engineer"]


class AuthConfigError(ValueError):
    """The API key configuration cannot be used."""


def hash_key(key: str) -> str:
    """The stored form of an API key: ``sha256:<hex digest>``.

    Keys are meant to be long random tokens, so a plain (unsalted) digest is enough to keep the file harmless.
    """
    return HASH_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a key belongs to: a station (``name`` is its station id) or an engineer."""

    name: str
    role: Role

    def can_read(self, station_id: str | None) -> bool:
        """Engineers read every station; a station reads only its own records."""
        return self.role == "engineer" or station_id == self.name


@dataclass(frozen=True)
class ApiKeys:
    """Key hashes per station and per engineer; :meth:`identify` tells whose a key is."""

    hashes: Mapping[str, str] = field(default_factory=dict)
    engineer_hashes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for role, table in (("station", self.hashes), ("engineer", self.engineer_hashes)):
            for name, digest in table.items():
                if not valid_station_id(name):
                    raise AuthConfigError(f"{role} name {name!r} is not valid; {STATION_ID_RULE}")
                if not (digest.startswith(HASH_PREFIX) and len(digest) == len(HASH_PREFIX) + 64):
                    raise AuthConfigError(
                        f"key hash of {role} {name!r} must look like 'sha256:<64 hex digits>'"
                    )
        shared = set(self.hashes.values()) & set(self.engineer_hashes.values())
        if shared:
            raise AuthConfigError("a key cannot be both a station key and an engineer key; give each its own")

    def __len__(self) -> int:
        return len(self.hashes) + len(self.engineer_hashes)

    def identify(self, key: str | None) -> Principal | None:
        """Whose key this is, or None. Compares against every hash in constant time."""
        if not key:
            return None
        digest = hash_key(key)
        found = None
        for role, table in (("station", self.hashes), ("engineer", self.engineer_hashes)):
            for name, expected in table.items():
                if hmac.compare_digest(digest, expected):
                    found = Principal(name, role)  # type: ignore[arg-type]
        return found

    def station_for(self, key: str | None) -> str | None:
        """The station this key belongs to, or None (also for an engineer key)."""
        who = self.identify(key)
        return who.name if who is not None and who.role == "station" else None

    def merged(self, other: ApiKeys) -> ApiKeys:
        """Both key sets; ``other`` wins for a name found in both."""
        return ApiKeys({**self.hashes, **other.hashes}, {**self.engineer_hashes, **other.engineer_hashes})

    @classmethod
    def from_mapping(cls, keys: Mapping[str, Any], engineers: Mapping[str, Any] | None = None) -> ApiKeys:
        """From ``{station: key or "sha256:<hex>"}`` (and the same for engineers); plain keys are hashed here
        and never kept."""
        return cls(_hash_table(keys, "station"), _hash_table(engineers or {}, "engineer"))

    @classmethod
    def from_env_string(cls, value: str, *, role: Role = "station") -> ApiKeys:
        """From ``"name-1:key1,name-2:key2"`` (the ``INSPECTION_API_KEYS`` / ``INSPECTION_ENGINEER_KEYS`` format)."""
        var, example = (ENV_VAR, "station") if role == "station" else (ENGINEER_ENV_VAR, "name")
        keys: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, key = item.partition(":")
            if not sep or not name.strip() or not key.strip():
                raise AuthConfigError(
                    f"{var} entry {item.split(':')[0]!r}... is not '{example}:key'; "
                    f"expected e.g. {var}='{example}-1:key1,{example}-2:key2'"
                )
            keys[name.strip()] = key.strip()
        return cls.from_mapping(keys) if role == "station" else cls.from_mapping({}, keys)


def _hash_table(keys: Mapping[str, Any], role: str) -> dict[str, str]:
    out = {}
    for name, value in keys.items():
        if not isinstance(value, str) or not value:
            raise AuthConfigError(f"the API key of {role} {name!r} must be a non-empty string")
        if value.startswith(HASH_PREFIX):
            out[str(name)] = value.lower()
        elif len(value) < MIN_KEY_LENGTH:
            raise AuthConfigError(
                f"the API key of {role} {name!r} is shorter than {MIN_KEY_LENGTH} characters"
            )
        else:
            out[str(name)] = hash_key(value)
    return out


def _table(config: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    table = (config or {}).get(name)
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise AuthConfigError(
            f"'{name}' in the config must be a table of name = key, got {type(table).__name__}"
        )
    return table


def load_api_keys(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> ApiKeys:
    """Keys from a parsed config's ``api_keys`` and ``engineer_keys`` tables, then from ``INSPECTION_API_KEYS``
    and ``INSPECTION_ENGINEER_KEYS`` (which win per name)."""
    environ = os.environ if environ is None else environ
    keys = ApiKeys.from_mapping(_table(config, "api_keys"), _table(config, "engineer_keys"))
    if environ.get(ENV_VAR):
        keys = keys.merged(ApiKeys.from_env_string(environ[ENV_VAR]))
    if environ.get(ENGINEER_ENV_VAR):
        keys = keys.merged(ApiKeys.from_env_string(environ[ENGINEER_ENV_VAR], role="engineer"))
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
        import tomllib

        data = tomllib.loads(text)
    else:
        raise AuthConfigError(f"config file {path.name} must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise AuthConfigError(f"config file {path} must hold a table at the top level")
    return data
