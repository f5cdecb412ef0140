"""Cloud endpoints and the emulator's emulator.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharelift.clouds import CLOUDS, emulator_cloud, resolve_cloud
from sharelift.errors import OptionError, UsageError


def test_national_clouds() -> None:
    assert CLOUDS["global"].graph_url == "https://graph.microsoft.com/v1.0"
    assert CLOUDS["usgov"].authority("contoso.us") == "https://login.microsoftonline.us/contoso.us"
    assert CLOUDS["usgovdod"].graph_scope == "https://dod-graph.microsoft.us/.default"
    assert CLOUDS["china"].sharepoint_admin_resource("contoso") == (
        "https://contoso-admin.sharepoint.cn"
    )
    with pytest.raises(OptionError, match=r"^tenant: the tenant is needed") as missing:
        CLOUDS["global"].authority("")
    assert missing.value.option == "tenant"


def test_unknown_cloud() -> None:
    with pytest.raises(OptionError, match="'mars'") as unknown:
        resolve_cloud("mars")
    assert unknown.value.option == "cloud" and "--" not in str(unknown.value)


def test_emulator_from_its_folder(tmp_path: Path) -> None:
    info = {
        "graph_url": "https://127.0.0.1:4443/v1.0",
        "graph_scope": "https://graph.microsoft.com/.default",
        "authority": "https://127.0.0.1:4443/tid",
        "ca_file": "/x/ca.pem",
        "client_id": "cid",
        "client_secret": "shh-secret",
        "sharepoint_admin_url": "https://127.0.0.1:4443",
        "sharepoint_admin_resource": "https://contoso-admin.sharepoint.com",
    }
    (tmp_path / "emulator.json").write_text(json.dumps(info))
    cloud = resolve_cloud("global", tmp_path)
    assert cloud.name == "emulator" and not cloud.instance_discovery
    assert cloud.authority("anything") == "https://127.0.0.1:4443/tid"
    assert cloud.graph_scope == "https://graph.microsoft.com/.default"
    assert cloud.sharepoint_admin_url("contoso") == "https://127.0.0.1:4443"
    assert "shh-secret" not in repr(cloud)


def test_emulator_dir_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"emulator\.json does not exist"):
        emulator_cloud(tmp_path)
    (tmp_path / "emulator.json").write_text("{")
    with pytest.raises(UsageError, match=r"not a readable emulator\.json"):
        emulator_cloud(tmp_path)
    (tmp_path / "emulator.json").write_text("{}")
    with pytest.raises(UsageError, match="lacks graph_url"):
        emulator_cloud(tmp_path)
