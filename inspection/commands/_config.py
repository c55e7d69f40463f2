"""Map a frozen config dataclass onto argparse flags, one flag per field, with an optional YAML/TOML file."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
UNDERSCORED_NAME = re.compile(r"(?<![.\w])([a-z][a-z0-9]*_[a-z0-9_]+)\b")
ATTRIBUTE_RE = re.compile(r"^([a-z_][a-z0-9_]*(?:,\s*[a-z_][a-z0-9_]*)*):\s+(.*)$")
# Old spellings still accepted, each with a one-line note: flag -> new flag, config file key -> new key.
DEPRECATED_FLAGS = {"--torch-threads": "--threads"}
DEPRECATED_KEYS = {"torch_threads": "threads"}


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number of at least 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse ``type``: a whole number of at least 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


class DeprecatedAlias(argparse.Action):
    """A renamed flag's old spelling: still accepted, hidden from ``--help``, with a one-line note on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new_flag: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)
        self.new_flag = new_flag

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog}: {option_string} is deprecated; use {self.new_flag}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_aliases(parser: argparse.ArgumentParser, renamed: dict[str, str] | None = None) -> None:
    """Accept the old spelling of every renamed flag (:data:`DEPRECATED_FLAGS`, or a command's own ``renamed``)
    that ``parser`` has under its new name."""
    for old, new in (renamed or DEPRECATED_FLAGS).items():
        action = next((a for a in parser._actions if new in a.option_strings), None)
        if action is not None:
            typed: dict[str, Any] = {"type": action.type} if action.type is not None else {}
            parser.add_argument(old, dest=action.dest, action=DeprecatedAlias, new_flag=new, **typed)


def add_threads_flag(parser: argparse.ArgumentParser, *, default: int, help: str) -> None:
    """``--threads``: torch intra-op threads, the one name every command uses (``--torch-threads`` is its old one)."""
    parser.add_argument("--threads", type=int, default=default, help=help)
    add_deprecated_aliases(parser)


def field_help(cls: type) -> dict[str, str]:
    """The sentence each field has in the ``Attributes:`` section of ``cls``'s Google-style docstring.

    An entry may name several fields (``host, port: ...``) and continue on more-indented lines.
    """
    doc = inspect.getdoc(cls) or ""
    _, found, section = doc.partition("Attributes:")
    out: dict[str, str] = {}
    names: list[str] = []
    for line in section.splitlines() if found else []:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        entry = ATTRIBUTE_RE.match(line.strip())
        if indent == 0:
            break
        if indent <= 4 and entry:
            names = [n.strip() for n in entry.group(1).split(",")]
            out.update(dict.fromkeys(names, entry.group(2)))
        elif names:
            for name in names:
                out[name] += " " + line.strip()
    return out


def as_flag_help(sentence: str, fields: set[str]) -> str:
    """A docstring sentence as ``--help`` text: a field it names by an underscored name reads as its flag
    (``init_from`` -> ``--init-from``); backticks go."""
    plain = sentence.replace("`", "")
    return UNDERSCORED_NAME.sub(
        lambda m: "--" + m.group(1).replace("_", "-") if m.group(1) in fields else m.group(1), plain
    )


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add ``--field-name`` for every field of ``cls`` (defaults left as None so a config file can fill them).

    Each flag's help is the field's sentence from the class docstring, plus its default.
    """
    hints = typing.get_type_hints(cls)
    docs = field_help(cls)
    fields = {f.name for f in dataclasses.fields(cls)} - set(skip)  # a skipped field has no flag to name
    parser.add_argument("--config", type=Path, help="YAML or TOML file with any of these options")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, tuple):  # shown as it is typed: space-separated, nothing when empty
            default = " ".join(str(v) for v in default)
        sentence = as_flag_help(docs.get(f.name, ""), fields).rstrip(".")
        shown = "" if default in ("", None) or "default" in sentence else f" (default: {default})"
        help_ = (f"{sentence}{shown}" if sentence else f"default: {default}").replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif typing.get_origin(kind) is tuple:
            parser.add_argument(flag, nargs="+", type=typing.get_args(kind)[0], default=None, help=help_)
        else:
            parser.add_argument(flag, type=kind, default=None, help=help_)
    add_deprecated_aliases(parser)


def config_from_args(cls: type[T], args: argparse.Namespace, **fixed: Any) -> T:
    """Build ``cls`` from a config file (if given), overridden by explicit flags and ``fixed`` values."""
    return cls(**{**given_values(cls, args), **fixed})


def rename_deprecated_keys(values: dict[str, Any], names: set[str], source: Path | None) -> None:
    """Move a config file's old key (``torch_threads``) to its new name, with a one-line note on stderr."""
    for old, new in DEPRECATED_KEYS.items():
        if old in values and new in names:
            print(f"{source}: option {old!r} is deprecated; use {new!r}", file=sys.stderr)
            values.setdefault(new, values.pop(old))


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML (``.toml``) or YAML config file's keys, dashes as underscores; exit 2 with one line when the file
    cannot be read or is not a table of keys."""
    try:
        text = path.read_text()
        loaded = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        print(f"inspection: cannot read the config file {path}: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    if not isinstance(loaded, dict | None):
        print(f"inspection: the config file {path} holds no keys (key = value lines)", file=sys.stderr)
        raise SystemExit(2)
    return {k.replace("-", "_"): v for k, v in (loaded or {}).items()}


def given_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields set by a config file (if given) or by a flag on the command line; defaults are left out."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(read_config_file(args.config))
    names = {f.name for f in dataclasses.fields(cls)}
    rename_deprecated_keys(values, names, args.config)
    unknown = set(values) - names
    if unknown:
        raise SystemExit(f"unknown option(s) in {args.config}: {sorted(unknown)}; known: {sorted(names)}")
    for name in names:
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    hints = typing.get_type_hints(cls)
    for name, v in values.items():
        if typing.get_origin(hints[name]) is tuple and isinstance(v, list):
            values[name] = tuple(v)
    return values
