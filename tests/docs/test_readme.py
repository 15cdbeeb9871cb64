"""The README is the front door: short, its quickstart the docs' own, its links alive."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_LINES = 300


def quickstart_check() -> ModuleType:
    """``.ci/quickstart.py``, which reads the marked blocks (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("quickstart_check", ROOT / ".ci/quickstart.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_at_most_300_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_LINES, f"README.md has {lines} lines: move the detail to docs/"


def test_the_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text
    assert "make test" in text


def test_the_readmes_quickstart_is_the_docs_quickstart() -> None:
    check = quickstart_check()
    page = check.marked_blocks(check.PAGE.read_text())
    readme = check.marked_blocks(README.read_text())
    strip = [(b.language, b.path, b.append, b.text) for b in page]
    assert [(b.language, b.path, b.append, b.text) for b in readme] == strip, (
        "README.md's marked quickstart blocks differ from docs/quickstart.md's (CI runs those)"
    )


def test_the_quickstart_page_writes_files_and_runs_commands() -> None:
    check = quickstart_check()
    blocks = check.marked_blocks(check.PAGE.read_text())
    commands = [command for block in blocks for command in block.commands]
    assert any(block.append for block in blocks)
    assert any(command.startswith("django-admin startproject") for command in commands)
    assert any(command.endswith(check.BACKGROUND) for command in commands)
    assert any("billflow_sync" in command and "--fail-on-drift" in command for command in commands)


def test_the_marks_are_read_as_the_script_says() -> None:
    check = quickstart_check()
    page = "\n".join(
        [
            "<!-- quickstart -->",
            '```python title="app/x.py (add at the end)"',
            "X = 1",
            "```",
            "```console",
            "$ not marked",
            "```",
            "<!-- quickstart -->",
            "```console",
            "$ echo one",
            "output, not a command",
            "$ serve --port 12111   # in another terminal",
            "```",
        ]
    )
    appended, console = check.marked_blocks(page)
    assert (appended.path, appended.append, appended.text) == ("app/x.py", True, "X = 1\n")
    assert console.commands == ["echo one", "serve --port 12111   # in another terminal"]


def test_the_readmes_links_to_the_docs_exist() -> None:
    for target in re.findall(r"\]\((docs/[^)#]+)", README.read_text()):
        assert (ROOT / target).is_file(), f"README.md links to {target}, which doesn't exist"
