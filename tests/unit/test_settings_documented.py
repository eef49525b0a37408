"""Every setting is in the settings table of docs/settings.md."""

from __future__ import annotations

import re

from graphs.settings import Settings
from scripts.processes import ROOT


def test_every_setting_has_a_row_in_the_settings_table() -> None:
    page = (ROOT / "docs" / "settings.md").read_text()
    table = page.split("# Settings\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)`(?: / `([A-Z0-9_]+)`)?", table, re.M))
    names = {name for row in documented for name in row if name}
    assert {field.upper() for field in Settings.model_fields} <= names
