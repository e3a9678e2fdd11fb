"""Every user-facing string is translated, and every translation is used."""

from __future__ import annotations

import json
from pathlib import Path
import re

from homeassistant.util.yaml import load_yaml_dict

INTEGRATION = Path(__file__).parent.parent / "custom_components" / "o365_direct_send"


def _load(name: str) -> dict[str, object]:
    """Read a translation file of the integration."""
    data = json.loads((INTEGRATION / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _source() -> str:
    """Return the Python source of the integration, core included."""
    return "\n".join(
        path.read_text(encoding="utf-8") for path in sorted(INTEGRATION.rglob("*.py"))
    )


def _section(strings: dict[str, object], *path: str) -> dict[str, object]:
    """Walk into a nested section of strings.json."""
    node: object = strings
    for key in path:
        assert isinstance(node, dict)
        node = node[key]
    assert isinstance(node, dict)
    return node


def test_english_translation_matches_strings() -> None:
    """translations/en.json is strings.json, so nothing is shown untranslated."""
    assert _load("translations/en.json") == _load("strings.json")


def test_every_error_and_exception_key_is_used() -> None:
    """Each error and exception string is raised somewhere in the code."""
    strings = _load("strings.json")
    source = _source()
    keys = (
        set(_section(strings, "config", "error"))
        | set(_section(strings, "options", "error"))
        | set(_section(strings, "exceptions"))
    )
    unused = sorted(key for key in keys if f'"{key}"' not in source)
    assert unused == []


def test_every_key_the_code_raises_is_translated() -> None:
    """Each translation_key in the code has a string."""
    strings = _load("strings.json")
    exceptions = _section(strings, "exceptions")
    raised = set(re.findall(r'translation_key="([a-z0-9_]+)"', _source()))
    entity_keys = {
        key
        for platform in _section(strings, "entity").values()
        if isinstance(platform, dict)
        for key in platform
    }
    assert sorted(raised - set(exceptions) - entity_keys) == []


def test_placeholders_are_filled() -> None:
    """Each placeholder in an exception message is one the code provides."""
    source = _source()
    for key, value in _section(_load("strings.json"), "exceptions").items():
        assert isinstance(value, dict)
        for placeholder in re.findall(r"{(\w+)}", value["message"]):
            assert f'"{placeholder}"' in source, (key, placeholder)


def test_quality_scale_lists_every_rule_with_a_reason_for_exemptions() -> None:
    """Every rule of the quality scale is done, or exempt with a comment."""
    rules = load_yaml_dict(str(INTEGRATION / "quality_scale.yaml"))["rules"]
    assert len(rules) == 54
    for name, value in rules.items():
        if value != "done":
            assert value["status"] == "exempt", name
            assert value["comment"], name
