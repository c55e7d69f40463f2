"""Every flag of every ``inspection`` command explains itself in ``--help``."""

from __future__ import annotations

import argparse

from inspection.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: str = "inspection"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_flag_has_a_help_sentence() -> None:
    missing = []
    for path, action in walk(build_parser()):
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        text = (action.help or "").strip()
        sentence = text.split("(default")[0].strip() if not text.startswith("default:") else ""
        if len(sentence.split()) < 3:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}: {text!r}")
    assert not missing, "flags without a help sentence:\n" + "\n".join(missing)
