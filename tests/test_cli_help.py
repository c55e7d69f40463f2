"""Every flag of every ``inspection`` command explains itself in ``--help``."""

from __future__ import annotations

import argparse

import pytest

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


def test_torch_threads_flag_is_spelled_threads_everywhere() -> None:
    visible = {}
    for path, action in walk(build_parser()):
        if action.help != argparse.SUPPRESS and any("thread" in o for o in action.option_strings):
            visible[path] = action.option_strings
    assert {"inspection serve", "inspection watch", "inspection load", "inspection bench"} <= set(visible)
    assert all(flags == ["--threads"] for flags in visible.values()), visible


@pytest.mark.parametrize(
    "argv",
    [["serve"], ["watch", "in", "--station", "s1"], ["load"], ["bench"], ["train", "noise", "--data", "d"]],
)
def test_old_torch_threads_spelling_still_works_with_a_note(argv, capsys) -> None:
    args = build_parser().parse_args([*argv, "--torch-threads", "3"])
    assert args.threads == 3
    err = capsys.readouterr().err
    assert err.strip() == f"inspection {argv[0]}: --torch-threads is deprecated; use --threads"


def test_serve_config_file_key_torch_threads_still_read(tmp_path, capsys) -> None:
    from inspection.commands._config import config_from_args
    from inspection.commands.serve import ServeConfig

    config = tmp_path / "service.toml"
    config.write_text("torch_threads = 2\n")
    args = build_parser().parse_args(["serve", "--config", str(config)])
    assert config_from_args(ServeConfig, args).threads == 2
    assert "'torch_threads' is deprecated; use 'threads'" in capsys.readouterr().err


def test_the_command_line_parser_loads_without_torch() -> None:
    """``inspection --help`` and ``--version`` answer at once: building the parser imports no model code (torch
    alone takes seconds to import)."""
    import subprocess
    import sys

    probe = "import sys, inspection.cli as c; c.build_parser(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
