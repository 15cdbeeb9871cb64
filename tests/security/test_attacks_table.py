"""The README's security table names only tests that exist."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.security.attacks import ATTACKS

HERE = Path(__file__).parent


def functions_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.attack[:40])
def test_every_test_the_table_names_exists(attack) -> None:
    for test in attack.tests:
        file, _, name = test.partition("::")
        path = HERE / file
        assert path.is_file(), f"{file} is not in tests/security/"
        if name:
            assert name in functions_of(path), f"{test} does not exist"
