"""The command line's own contract: version, usage errors, exit codes."""

from __future__ import annotations

import pytest

from sharelift import __version__
from sharelift.cli import main
from sharelift.errors import EXIT_USAGE


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sharelift {__version__}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err
