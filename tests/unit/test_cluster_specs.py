"""What a unit of work carries: the job as given, never a secret; what a cluster refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from sharelift.cli import main
from sharelift.cluster.specs import JobSpec
from sharelift.config import keyword_options
from sharelift.target import parse_target


def test_a_job_spec_carries_the_options_but_no_secret_and_reads_back(tmp_path: Path) -> None:
    values = keyword_options(
        "migrate",
        {
            "exclude": ["*.tmp", "a,b"],
            "skip_extensions": "mp3:txt",
            "modified_after": "2024-01-31",
            "rename": "fullwidth",
            "workers": 4,
            "migration_storage": "DefaultEndpointsProtocol=https;AccountKey=s3cr3t",
            "state": str(tmp_path / "s.db"),
        },
    )
    spec = JobSpec.make(
        str(tmp_path), parse_target("drive:abc/Dept"), "jobs.csv#2", values,
        {"skip_hidden": True}, unit_files=10, unit_bytes=1 << 20,
    )  # fmt: skip
    text = repr(spec.to_json())
    assert "s3cr3t" not in text and "migration_storage" not in text and "state" not in text
    again = JobSpec.from_json(spec.to_json())
    assert again == spec
    loaded = keyword_options("migrate", {k: v for k, v in spec.options.items()})
    assert loaded["exclude"] == ("*.tmp", "a,b")
    assert loaded["skip_extensions"] == frozenset({"mp3", "txt"})
    assert str(loaded["rename"]) == "fullwidth" and loaded["workers"] == 4
    assert loaded["modified_after"] == values["modified_after"]


def test_a_cluster_refuses_what_it_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = ["--broker", "redis://127.0.0.1:1/0", "--state", "postgresql://u:pw@127.0.0.1:1/x"]
    line = ["migrate", str(tmp_path), "drive:abc", *broker]
    api = [*line, "--via", "migration-api"]
    assert main([*api, "--on-conflict", "rename"]) == 2
    assert "rename cannot go with via migration-api" in capsys.readouterr().err
    monkeypatch.setenv("SHARELIFT_MIGRATION_STORAGE", "AccountKey=s3cr3t")
    assert main(api) == 2
    err = capsys.readouterr().err
    assert "not used on a cluster yet" in err and "s3cr3t" not in err
    monkeypatch.delenv("SHARELIFT_MIGRATION_STORAGE")
    assert main([*line, "--broker", "amqp://h"]) == 2
    assert "expected redis://" in capsys.readouterr().err
    assert main([*line, "--queue", "no spaces"]) == 2
    err = capsys.readouterr().err
    assert "not a queue name" in err and "pw" not in err
