"""The options table (sharelift.config) and what is made from it: flags, environment variables,
the config file with its precedence, `sharelift config show`, docs/options.md, the library's
keywords and EngineConfig's defaults."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections import Counter
from pathlib import Path

import pytest

from sharelift import config
from sharelift.cli import build_parser, main
from sharelift.cli.config_command import reference
from sharelift.cli.options import resolve
from sharelift.config import OPTIONS, keyword_options, options_for
from sharelift.engine import EngineConfig
from sharelift.errors import ConfigError, OptionError, UsageError
from sharelift.graph.drive import FRAGMENT_UNIT

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMANDS = ("scan", "migrate", "provision", "status", "report", "login", "logout", "emulator")


def _parse(argv: list[str], environ: dict[str, str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    resolve(args.command, args, environ or {})
    return args


# --- the table ---------------------------------------------------------------------------------


def test_every_option_has_one_variable_and_one_key() -> None:
    envs = Counter(o.env for o in OPTIONS.values())
    keys = Counter(o.key for o in OPTIONS.values() if o.key)
    assert [e for e, n in envs.items() if n > 1] == []
    assert [k for k, n in keys.items() if n > 1] == []
    for option in OPTIONS.values():
        assert option.env == "SHARELIFT_" + option.name.upper()
        assert option.flag is not None or option.secret  # only secrets go without a flag


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_are_unique_within_a_command(command: str) -> None:
    flags = [o.flag for o in options_for(command) if o.flag]
    flags += [alias for o in options_for(command) for alias, _, _ in o.aliases]
    assert len(flags) == len(set(flags))


def test_fragment_unit_agrees_with_graph() -> None:
    assert config.FRAGMENT_UNIT == FRAGMENT_UNIT


def test_engine_defaults_come_from_the_table() -> None:
    engine = EngineConfig()
    assert engine.chunk_size == config.default("chunk_size") == 10 * 1024 * 1024
    assert engine.workers == config.default("workers") == 16
    assert engine.policy == config.default("on_conflict") == "newer"
    assert (engine.mirror, engine.verify_target) == (False, False)


def test_engine_checks_name_the_option_not_a_flag() -> None:
    with pytest.raises(OptionError, match="multiple of 320k below 60M") as bad:
        EngineConfig(chunk_size=1000)
    assert bad.value.option == "chunk_size" and "--" not in str(bad.value)
    assert isinstance(bad.value, ValueError)
    with pytest.raises(OptionError, match="at least 1"):
        EngineConfig(workers=0)


def test_library_keywords_take_python_values_or_text() -> None:
    values = keyword_options(
        "migrate",
        {"chunk_size": "320k", "workers": 4, "modified_after": dt.date(2024, 1, 31)},
    )
    assert values["chunk_size"] == 320 * 1024 and values["workers"] == 4
    assert values["modified_after"].date() == dt.date(2024, 1, 31)
    assert values["include"] == () and str(values["rename"]) == "underscore"
    with pytest.raises(TypeError, match="'wrokers'"):
        keyword_options("migrate", {"wrokers": 4})
    with pytest.raises(OptionError, match=r"^skip_extensions: "):
        keyword_options("scan", {"skip_extensions": "::"})
    with pytest.raises(OptionError, match=r"^on_conflict: choose one of newer"):
        keyword_options("migrate", {"on_conflict": "always"})


# --- flags, environment, file ------------------------------------------------------------------


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_precedence_flag_environment_file_default(tmp_path: Path) -> None:
    conf = _write(
        tmp_path / "sharelift.toml",
        'state = "/from/file.db"\n[migrate]\nworkers = 3\nchunk_size = "640k"\n'
        'mirror = true\n[source]\nexclude = ["*.tmp", "~$*"]\n',
    )
    env = {"SHARELIFT_CONFIG": str(conf), "SHARELIFT_WORKERS": "5"}
    args = _parse(["migrate", "src", "drive:b!x", "--workers", "7", "--no-mirror"], env)
    origins = {name: setting.origin for name, setting in args.settings.items()}
    assert (args.workers, origins["workers"]) == (7, "flag")
    assert (args.mirror, origins["mirror"]) == (False, "flag")
    assert (args.chunk_size, origins["chunk_size"]) == (640 * 1024, "file")
    assert (args.state, origins["state"]) == ("/from/file.db", "file")
    assert args.exclude == ("*.tmp", "~$*")
    assert (args.on_conflict, origins["on_conflict"]) == ("newer", "default")
    assert (args.config, origins["config"]) == (str(conf), "environment")
    args = _parse(["migrate", "src", "drive:b!x"], env)
    assert (args.workers, args.settings["workers"].origin) == (5, "environment")
    assert args.mirror is True


def test_lists_and_switches_from_the_environment() -> None:
    env = {"SHARELIFT_EXCLUDE": '*.tmp, "a,b.txt"', "SHARELIFT_SKIP_HIDDEN": "yes"}
    args = _parse(["scan", "src"], env)
    assert args.exclude == ("*.tmp", "a,b.txt") and args.skip_hidden is True
    assert _parse(["scan", "src", "--exclude", "x"], env).exclude == ("x",)


def test_overwrite_is_on_conflict() -> None:
    assert _parse(["migrate", "--overwrite"]).on_conflict == "overwrite"
    assert _parse(["migrate"], {"SHARELIFT_ON_CONFLICT": "rename"}).on_conflict == "rename"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--workers", "0"], {}, "--workers: must be at least 1, not 0"),
        ([], {"SHARELIFT_WORKERS": "many"}, "SHARELIFT_WORKERS: expected a whole number"),
        ([], {"SHARELIFT_MIRROR": "perhaps"}, "SHARELIFT_MIRROR: expected true or false"),
        (["--chunk-size", "1000"], {}, "--chunk-size: must be a multiple of 320k below 60M"),
        (["--rename", "ab"], {}, "--rename: expected underscore, fullwidth, off"),
    ],
)
def test_bad_values_name_where_they_came_from(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as bad:
        _parse(["migrate", "src", *argv], env)
    assert str(bad.value).startswith(message)


def test_config_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.toml", "[migrate]\nworkers = 0\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: migrate\.workers: must be at least 1"):
        _parse(["migrate", "--config", str(bad)])
    typo = _write(tmp_path / "typo.toml", "[migrate]\nwrokers = 4\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'migrate\.wrokers'"):
        _parse(["migrate", "--config", str(typo)])
    broken = _write(tmp_path / "broken.toml", "[migrate\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        _parse(["migrate", "--config", str(broken)])
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        _parse(["migrate", "--config", str(tmp_path / "missing.toml")])


def test_a_secret_in_a_file_others_may_read_is_refused(tmp_path: Path) -> None:
    text = '[connection]\nauth = "secret"\nclient_secret = "s3cr3t-value"\n'
    shared = _write(tmp_path / "shared.toml", text, mode=0o644)
    with pytest.raises(ConfigError, match="holds a secret") as refused:
        _parse(["login", "--config", str(shared)])
    assert "s3cr3t-value" not in str(refused.value)
    private = _write(tmp_path / "private.toml", text)
    assert _parse(["login", "--config", str(private)]).client_secret == "s3cr3t-value"


def test_required_options_may_come_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--out DIR is required"):
        _parse(["report"])
    assert _parse(["report"], {"SHARELIFT_OUT": str(tmp_path)}).out == str(tmp_path)


def test_cli_error_names_the_variable_a_bad_value_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHARELIFT_MODIFIED_AFTER", "yesterday")
    assert main(["scan", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sharelift: error: SHARELIFT_MODIFIED_AFTER: expected a date")


# --- config show and the reference -------------------------------------------------------------


def test_config_show_tells_where_each_value_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = _write(
        tmp_path / "c.toml",
        '[connection]\nclient_secret = "s3cr3t-value"\n[migrate]\nworkers = 3\n',
    )
    monkeypatch.setenv("SHARELIFT_TENANT", "contoso.onmicrosoft.com")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-profiles"))
    line = ["migrate", "src", "drive:b!x", "--chunk-size", "640k", "--config", str(conf)]
    assert main(["config", "show", *line]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t-value" not in out
    rows = {r.split()[0]: r for r in out.splitlines()[2:]}
    assert re.match(r"--chunk-size +640k +flag$", rows["--chunk-size"])
    assert re.match(r"--workers +3 +file .*c\.toml: migrate\.workers$", rows["--workers"])
    assert re.match(r"--tenant +contoso\.onmicrosoft\.com +environment SHARELIFT_TENANT$",
                    rows["--tenant"])  # fmt: skip
    assert re.match(r"SHARELIFT_CLIENT_SECRET +\(set\) +file ", rows["SHARELIFT_CLIENT_SECRET"])
    assert re.match(r"--on-conflict +newer +default$", rows["--on-conflict"])
    assert out.startswith(f"config file: {conf}\n")
    # Without a command: every option, from the environment, the file or the default.
    assert main(["config", "show", "--config", str(conf)]) == 0
    everything = capsys.readouterr().out
    assert "--data" in everything and "--workers" in everything and "s3cr3t" not in everything


def test_options_reference_is_generated_from_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/options.md is `sharelift config docs`; regenerate it after changing the table."""
    committed = (DOCS / "options.md").read_text(encoding="utf-8")
    assert main(["config", "docs"]) == 0
    assert capsys.readouterr().out == committed == reference()
    for option in OPTIONS.values():
        assert f"`{option.env}`" in committed


def test_guides_name_only_variables_that_exist() -> None:
    """Every SHARELIFT_ variable a guide or the README names is an option's (or the config
    file's), so `every flag has an environment variable` stays true in what they say."""
    known = {o.env for o in OPTIONS.values()}
    texts = [p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")]
    texts.append((DOCS.parent / "README.md").read_text(encoding="utf-8"))
    named = {m for text in texts for m in re.findall(r"SHARELIFT_[A-Z_]+[A-Z]", text)}
    assert named - known == set()


def test_passwords_in_service_urls_are_never_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARELIFT_BROKER", "redis://:broker-secret@redis.example:6379/0")
    state = "postgresql://sharelift:db-secret@db.example/sharelift?sslmode=require"
    assert main(["config", "show", "worker", "--state", state]) == 0
    out = capsys.readouterr().out
    assert "broker-secret" not in out and "db-secret" not in out
    assert "redis://:***@redis.example:6379/0" in out
    assert "postgresql://sharelift:***@db.example/sharelift?sslmode=require" in out
    # Errors name the store without its password; a run on this machine (no broker) refuses
    # a cluster's store rather than take the URL for a file.
    assert main(["migrate", "/nonexistent", "drive:x", "--state", state]) == 2
    err = capsys.readouterr().err
    assert "db-secret" not in err and "sharelift:***@db.example" in err
    monkeypatch.delenv("SHARELIFT_BROKER")
    assert main(["migrate", "/nonexistent", "drive:x", "--state", state, "--emulator", "/x"]) == 2
    err = capsys.readouterr().err
    assert "db-secret" not in err and "serves a cluster" in err
