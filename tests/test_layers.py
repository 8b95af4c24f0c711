"""The layering rule: Meta's pure rules and the engine never import Textual (or, for rules, aiohttp)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import wa_devtunnel.engine
import wa_devtunnel.rules


def _modules(package: object) -> list[str]:
    """Every module of the package, subpackages included (rules/decode, engine/tunnel, ...)."""
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [m.name for m in pkgutil.walk_packages(package.__path__, prefix)]  # type: ignore[attr-defined]


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys, json\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(json.loads(output.stdout))


def test_engine_and_rules_never_import_textual() -> None:
    modules = _modules(wa_devtunnel.rules) + _modules(wa_devtunnel.engine)
    modules += ["wa_devtunnel.settings", "wa_devtunnel.cli.headless", "wa_devtunnel.cli.main"]
    assert len(modules) >= 50
    loaded = _imported_after(modules)
    assert not any(name == "textual" or name.startswith("textual.") for name in loaded)


def test_pure_rules_do_no_networking() -> None:
    loaded = _imported_after(_modules(wa_devtunnel.rules))
    assert "aiohttp" not in loaded
    assert "wa_devtunnel.engine" not in loaded
