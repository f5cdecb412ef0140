"""The usual mistakes, made on purpose: the real command line (a child process) against the
emulator, through a catalogue of bad inputs — paths, URLs, job files, flags, permissions, a
dead emulator. Each gets one clear line naming what is wrong, the documented exit code, and
never a Python traceback.

Unreadable and unwritable paths are made with file modes; when the tests run as root (who
reads and writes anything) the command runs without the capabilities that let root ignore
file modes (setpriv), as any other user would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import ssl_context_for
from sharelift.emulator.server import EmulatorServer

TEAM = "https://contoso.sharepoint.com/sites/Team"
MEGAN = "onedrive:megan@contoso.com"
HEADER = "Source,Source DocLib,Source SubFolder,Target Web,Target DocLib,Target SubFolder\n"


@dataclass(frozen=True)
class Place:
    """The folder of bad things, and the emulators to talk to."""

    root: Path
    emulator: Path
    dead: Path

    def __getitem__(self, name: str) -> str:
        return str(self.root / name)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorServer) -> Iterator[Place]:
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "share").mkdir()
    (root / "share" / "a.txt").write_text("a")
    (root / "a-file").write_text("not a folder")
    (root / "unreadable").mkdir()
    (root / "unreadable" / "b.txt").write_text("b")
    (root / "read-only").mkdir()
    jobs = {
        "malformed.json": '{"Tasks": [',
        "not-tasks.json": '{"Jobs": []}',
        "bad-row.csv": f"{HEADER}{root / 'share'},,\n",
        "missing-columns.csv": "Source,Target Site,Library\nx,y,z\n",
        "bad-task.json": json.dumps({"Tasks": [{"SourcePath": 5}]}),
        "unknown-setting.json": json.dumps(
            {
                "Tasks": [
                    {
                        "SourcePath": str(root / "share"),
                        "TargetPath": TEAM,
                        "TargetList": "Documents",
                        "Settings": {"Colour": "blue"},
                    }
                ]
            }
        ),
        "unreadable.csv": f"{HEADER}{root / 'share'},,,{TEAM},Documents,x\n",
        "empty.csv": "\n",
    }
    for name, text in jobs.items():
        (root / name).write_text(text)
    (root / "latin1.csv").write_bytes(HEADER.encode() + b"\xe9t\xe9,,,x,y,z\n")
    # A dead emulator: its files, and nothing listening on its port.
    dead = root / "dead-emulator"
    dead.mkdir()
    info = json.loads((emulator.data_dir / "emulator.json").read_text())
    base = info["base_url"]
    text = json.dumps(info).replace(base, "https://127.0.0.1:9")
    (dead / "emulator.json").write_text(text)
    (root / "unreadable").chmod(0)
    (root / "unreadable.csv").chmod(0)
    (root / "read-only").chmod(0o555)
    yield Place(root, emulator.data_dir, dead)
    for name in ("unreadable", "unreadable.csv", "read-only"):
        (root / name).chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def file_at_target(emulator: EmulatorServer, place: Place) -> str:
    """A file in megan's OneDrive, where a TARGET names a folder."""
    drive = next(u["drive_id"] for u in emulator.info["users"] if u["upn"].startswith("megan"))
    token = emulator.identity.issue_access_token(
        audience="https://graph.microsoft.com",
        user=emulator.identity.find_user("megan@contoso.com"),
    )
    with httpx.Client(verify=ssl_context_for(emulator.info), timeout=30) as client:
        answer = client.put(
            f"{emulator.info['graph_url']}/drives/{drive}/root:/catalogue-file.txt:/content",
            content=b"x",
            headers={"Authorization": f"Bearer {token}"},
        )
        answer.raise_for_status()
    return "catalogue-file.txt"


Args = Callable[[Place], list[str]]


def _migrate(source: str, target: str, *extra: str) -> Args:
    def make(p: Place) -> list[str]:
        src = p[source] if not source.startswith("/") else source
        return ["migrate", src, target, "--emulator", str(p.emulator), "--state",
                p["state.db"], *extra]  # fmt: skip

    return make


def _jobs(name: str, *extra: str) -> Args:
    def make(p: Place) -> list[str]:
        return ["migrate", "--jobs", p[name], "--emulator", str(p.emulator), "--state",
                p["state.db"], *extra]  # fmt: skip

    return make


def _raw(*args: str) -> Args:
    def make(p: Place) -> list[str]:
        return [a.format(root=p.root, emulator=p.emulator, dead=p.dead) for a in args]

    return make


# (id, arguments, exit code, what the one error line says)
CATALOGUE: list[tuple[str, Args, int, str]] = [
    # --- paths
    ("source missing", _migrate("nowhere", MEGAN + "/x"), 2, r"SOURCE '.*nowhere' does not exist"),
    ("source is a file", _migrate("a-file", MEGAN + "/x"), 2, r"SOURCE '.*a-file' is not a folder"),
    ("source unreadable", _migrate("unreadable", MEGAN + "/x"), 2,
     r"SOURCE '.*unreadable' cannot be listed: Permission denied"),
    ("report inside source", _migrate("share", MEGAN + "/x", "--report", "{root}/share/r"), 2,
     r"--report: .*share/r is inside SOURCE; the source is never written to"),
    ("scan report inside source", _raw("scan", "{root}/share", "--report", "{root}/share/r"), 2,
     r"--report: .*share/r is inside SOURCE"),
    ("scan source missing", _raw("scan", "{root}/nowhere"), 2,
     r"SOURCE '.*nowhere' does not exist"),
    # --- URLs
    ("bad scheme", _migrate("share", "ftp://contoso.sharepoint.com/sites/Team"), 2,
     r"TARGET: 'ftp://.*' is not a target: give a OneDrive or SharePoint URL"),
    ("http", _migrate("share", "http://contoso.sharepoint.com/sites/Team/Shared Documents"), 2,
     r"TARGET: .* SharePoint and OneDrive URLs use https"),
    ("unknown host", _migrate("share", "https://fabrikam.sharepoint.com/sites/T/Documents"), 4,
     r"fabrikam\.sharepoint\.com is not a SharePoint host of this tenant"),
    ("unknown site", _migrate("share", "https://contoso.sharepoint.com/sites/Gone/Documents"), 4,
     r"no site at https://contoso\.sharepoint\.com/sites/Gone; the nearest site that exists is "
     r"https://contoso\.sharepoint\.com/"),
    ("unknown library", _migrate("share", f"{TEAM}/Nope"), 4,
     r"has no document library at /sites/Team/Nope \(its libraries: Archive "
     r"\(/sites/Team/Archive\), Documents \(/sites/Team/Shared Documents\)\)"),
    ("unknown library by name", _raw("migrate", "{root}/share", "--site", TEAM, "--library",
                                     "Nope", "--emulator", "{emulator}", "--state",
                                     "{root}/state.db"), 4,
     r"has no library 'Nope' \(its libraries: Archive"),
    ("folder is a file", _migrate("share", MEGAN + "/catalogue-file.txt"), 4,
     r"'catalogue-file\.txt' is a file at the target, not a folder"),
    ("unknown user", _migrate("share", "onedrive:ghost@contoso.com/x"), 4,
     r"no user ghost@contoso\.com in the tenant"),
    ("user without a licence", _migrate("share", "onedrive:diego@contoso.com/x"), 4,
     r"diego@contoso\.com has no licence that includes OneDrive"),
    ("user not provisioned", _migrate("share", "onedrive:nestor@contoso.com/x"), 4,
     r"nestor@contoso\.com has no OneDrive yet \(not provisioned\); `sharelift provision"),
    ("not a user name", _migrate("share", "onedrive:nestor/x"), 2, r"TARGET: .*is not a UPN"),
    ("unknown drive", _migrate("share", "drive:b!nothing"), 4, r"no drive with id 'b!nothing'"),
    # --- job files
    ("job file missing", _jobs("no-such.csv"), 2, r"no-such\.csv: cannot read the job file"),
    ("malformed JSON", _jobs("malformed.json"), 2, r"malformed\.json: not valid JSON"),
    ("JSON without tasks", _jobs("not-tasks.json"), 2, r'expected \{"Tasks": \[\.\.\.\]\}'),
    ("malformed CSV row", _jobs("bad-row.csv"), 2, r"bad-row\.csv: no valid rows to run"),
    ("missing columns", _jobs("missing-columns.csv"), 2,
     r"missing-columns\.csv: row 1 \(header\): unknown column\(s\) Target Site, Library"),
    ("bad JSON task", _jobs("bad-task.json"), 2, r"bad-task\.json: no valid rows to run"),
    ("unknown setting", _jobs("unknown-setting.json", "--strict"), 2,
     r"unknown-setting\.json: 1 bad row\(s\), nothing run \(--strict\)"),
    ("job file unreadable", _jobs("unreadable.csv"), 2,
     r"unreadable\.csv: cannot read the job file \(Permission denied\)"),
    ("job file not UTF-8", _jobs("latin1.csv"), 2, r"latin1\.csv: not UTF-8"),
    ("empty job file", _jobs("empty.csv"), 2, r"empty\.csv: no jobs in the file"),
    # --- flags
    ("workers 0", _migrate("share", MEGAN + "/x", "--workers", "0"), 2,
     r"--workers: must be at least 1, not 0"),
    ("workers not a number", _migrate("share", MEGAN + "/x", "--workers", "many"), 2,
     r"--workers: expected a whole number, got 'many'"),
    ("chunk size", _migrate("share", MEGAN + "/x", "--chunk-size", "7"), 2,
     r"--chunk-size: must be a multiple of 320k below 60M, not 7"),
    ("conflict policy", _migrate("share", MEGAN + "/x", "--on-conflict", "maybe"), 2,
     r"--on-conflict: choose one of newer, overwrite, rename, not 'maybe'"),
    ("rename", _migrate("share", MEGAN + "/x", "--rename", "**"), 2,
     r"--rename: expected underscore, fullwidth, off or a single character"),
    ("date", _migrate("share", MEGAN + "/x", "--modified-after", "yesterday"), 2,
     r"--modified-after: expected a date like 2024-01-31, got 'yesterday'"),
    ("target and site", _migrate("share", MEGAN + "/x", "--site", TEAM, "--library", "Documents"),
     2, r"give TARGET or --site/--library/--subfolder, not both"),
    ("jobs and a source", _raw("migrate", "{root}/share", "--jobs", "{root}/bad-row.csv"), 2,
     r"--jobs FILE names sources and targets: give no SOURCE or TARGET"),
    ("unknown flag", _migrate("share", MEGAN + "/x", "--wrokers", "2"), 2,
     r"unrecognized arguments: --wrokers 2"),
    ("environment", _raw("migrate", "{root}/share", MEGAN, "--emulator", "{emulator}",
                         "SHARELIFT_WORKERS=lots"), 2,
     r"SHARELIFT_WORKERS: expected a whole number, got 'lots'"),
    # --- permissions
    ("state folder not writable",
     _migrate("share", MEGAN + "/x", "--state", "{root}/read-only/state.db"), 2,
     r"state store .*read-only/state\.db.*Permission denied"),
    ("report folder not writable",
     _migrate("share", MEGAN + "/x", "--report", "{root}/read-only/reports"), 2,
     r"--report: cannot write reports into .*read-only/reports: Permission denied"),
    ("report folder under a file",
     _migrate("share", MEGAN + "/x", "--report", "{root}/a-file/r"), 2,
     r"--report: cannot write reports into .*a-file/r: Not a directory"),
    # --- connection
    ("dead emulator", _raw("migrate", "{root}/share", MEGAN, "--emulator", "{dead}"), 75,
     r"the emulator of .*dead-emulator does not answer at https://127\.0\.0\.1:9 .*is it "
     r"running\? Start it with `sharelift emulator --data .*dead-emulator`"),
    ("no emulator there", _raw("migrate", "{root}/share", MEGAN, "--emulator", "{root}/share"), 2,
     r"--emulator: .*emulator\.json does not exist"),
    ("no tenant", _raw("migrate", "{root}/share", MEGAN, "--state", "{root}/state.db"), 2,
     r"no tenant to sign in to: give --tenant TENANT .* `sharelift login`; .* --emulator DIR"),
]  # fmt: skip


def _no_dac() -> list[str]:
    """As root, a prefix that makes file modes apply (see the module docstring)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def run_cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items()
        if not k.startswith("SHARELIFT_") and k not in ("HTTPS_PROXY", "https_proxy")
    }  # fmt: skip
    environment.update(env)
    return subprocess.run(
        [*_no_dac(), sys.executable, "-m", "sharelift", *args],
        capture_output=True, text=True, timeout=120, check=False, env=environment,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _argv_and_env(place: Place, args: Args, home: Path) -> tuple[list[str], dict[str, str]]:
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / "state")}
    argv = [
        a.format(root=place.root, emulator=place.emulator, dead=place.dead) for a in args(place)
    ]
    for assignment in [a for a in argv if a.startswith("SHARELIFT_")]:  # a variable, not a flag
        argv.remove(assignment)
        name, _, value = assignment.partition("=")
        env[name] = value
    return argv, env


@pytest.fixture(scope="module")
def answers(
    place: Place, file_at_target: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case of the catalogue run once, four at a time (each is a child process)."""

    def one(case: tuple[str, Args, int, str]) -> subprocess.CompletedProcess[str]:
        argv, env = _argv_and_env(place, case[1], tmp_path_factory.mktemp("home"))
        return run_cli(argv, **env)

    with ThreadPoolExecutor(4) as pool:
        return dict(zip([c[0] for c in CATALOGUE], pool.map(one, CATALOGUE), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize(("case", "code", "says"), [(c[0], *c[2:]) for c in CATALOGUE],
                         ids=[c[0] for c in CATALOGUE])  # fmt: skip
def test_a_bad_input_gets_one_line_and_its_exit_code(
    answers: dict[str, subprocess.CompletedProcess[str]], case: str, code: int, says: str
) -> None:
    done = answers[case]
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("usage:")]
    # Bad rows of a job file are listed one line each before the line that ends the run.
    rows = [line for line in errors[:-1] if re.search(r": row \d+", line)]
    assert errors[len(rows) :] and len(errors) == len(rows) + 1, done.stderr
    assert all(line.startswith("sharelift") and ": error: " in line for line in errors)
    assert re.search(says, errors[-1]), errors[-1]
    assert done.returncode == code, done.stderr


@pytest.mark.slow
def test_transient_failures_while_resolving_are_retried(
    emulator: EmulatorServer, place: Place, tmp_path: Path
) -> None:
    """Some 500s and 503s while the target is resolved: the retries carry the run. (When they
    persist, the run ends with exit 75, "run again later": tests/unit/test_target.py, with a
    clock that does not make the test wait out the backoff.)"""
    args = ["migrate", str(place.root / "share"), f"{TEAM}/Shared Documents/Transient",
            "--emulator", str(emulator.data_dir), "--state", str(tmp_path / "state.db"),
            "--dry-run"]  # fmt: skip
    emulator.set_faults(error_rate=0.4, seed=7)
    before = emulator.stats()["injected_5xx"]
    done = run_cli(args, HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert emulator.stats()["injected_5xx"] > before
