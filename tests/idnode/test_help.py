"""The command line explains itself: every option shows its default, no help cites outside."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from idnode.cli import build_parser

ROOT = Path(__file__).parents[2]
FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction)
NOT_OPTIONS = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("idnode",)
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


PARSERS = dict(_parsers(build_parser()))


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_shows_its_default(name: str) -> None:
    parser = PARSERS[name]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or isinstance(action, NOT_OPTIONS + FLAGS):
            continue
        shown = formatter._get_help_string(action) or ""
        assert "default" in shown, f"{name} {action.option_strings[0]}: {action.help!r}"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_renders_defaults_and_cites_nothing_outside(name: str) -> None:
    text = PARSERS[name].format_help()
    assert "DESIGN" not in text and "§" not in text, text


def test_docs_and_readme_stand_alone() -> None:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        assert "DESIGN" not in text, path.name


def test_code_cites_nothing_outside_the_repository() -> None:
    rooms = ["idnode", "registry", "resolver", "sync", "metrics", "loadtest", "tests", "deploy"]
    for room in rooms:
        for path in (ROOT / room).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".toml", ".yml", ".json", ".service"):
                if path == Path(__file__):
                    continue
                assert "DESIGN" not in path.read_text(errors="replace"), path


def test_a_value_default_is_rendered() -> None:
    text = PARSERS["idnode import"].format_help()
    assert "(default: 1000)" in " ".join(text.split())
