"""The docs' generated tables are what their scripts print: the page can't drift from the tests."""

from __future__ import annotations

import pytest

from tests.docs.generated import generated_table
from tests.faults import bad_inputs
from tests.security import attacks


@pytest.mark.parametrize("module", [bad_inputs, attacks], ids=lambda m: m.__name__)
def test_the_page_holds_the_table_its_script_prints(module) -> None:
    page_table = generated_table(module.PAGE, module.__name__)
    assert page_table == module.markdown(), (
        f"{module.PAGE.name} differs from its cases: run "
        f"python -m {module.__name__} --markdown --write"
    )
