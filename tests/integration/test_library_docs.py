"""docs/library.md runs as written: every Python example, in order, against the emulator; the
pytest fixture recipe as a test file of its own, under pytest."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "library.md"
_BLOCK = re.compile(r"(?:<!-- (?P<mark>[a-z]+) -->\n)?```python\n(?P<code>.*?)```", re.DOTALL)


def _blocks() -> list[tuple[str, int, str]]:
    """(mark, line, code) of every ```python block."""
    text = GUIDE.read_text(encoding="utf-8")
    return [
        (m["mark"] or "", text.count("\n", 0, m.start("code")) + 1, m["code"])
        for m in _BLOCK.finditer(text)
    ]


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working folder, and profiles and token caches that are not the user's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    saved = dict(os.environ)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def test_the_guide_has_an_example_of_each_part() -> None:
    code = "\n".join(block for _, _, block in _blocks())
    for name in (
        "sharelift.scan(",
        "sharelift.migrate(",
        "sharelift.migrate_async(",
        "progress=",
        "Credential.from_secret(",
        "Credential.from_certificate(",
        "Credential.from_token(",
        "Credential.device_code(",
        "Credential.managed_identity(",
        "Credential.from_profile(",
        "Emulator(",
        "OptionError",
        "@pytest.fixture",
    ):
        assert name in code, name


@pytest.mark.slow
def test_every_example_runs_in_order(isolated: Path) -> None:
    namespace: dict[str, object] = {"__name__": "library_md"}
    try:
        for mark, line, code in _blocks():
            if mark == "pytest":
                continue
            # Line numbers in a traceback are the guide's own.
            exec(compile("\n" * (line - 1) + code, str(GUIDE), "exec"), namespace)  # noqa: S102
    finally:
        tenant = namespace.get("tenant")
        stop = getattr(tenant, "stop", None)
        if stop is not None:
            stop()


@pytest.mark.slow
def test_the_pytest_recipe_passes_under_pytest(isolated: Path) -> None:
    (recipe,) = [code for mark, _, code in _blocks() if mark == "pytest"]
    (isolated / "test_recipe.py").write_text(recipe, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_recipe.py"],
        cwd=isolated,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
