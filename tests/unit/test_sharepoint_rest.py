"""Which sign-ins SharePoint REST refuses: app-only tokens got with a client secret."""

from __future__ import annotations

import base64
import json

import pytest

from sharelift.errors import OptionError
from sharelift.graph.sharepoint import app_only_from_secret, refuse_secret_sign_in


def jwt(**claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_how_a_token_was_got_decides() -> None:
    assert app_only_from_secret("secret")
    assert not app_only_from_secret("certificate")
    assert not app_only_from_secret("device_code")
    assert app_only_from_secret("token", jwt(appidacr="1", roles=["Sites.FullControl.All"]))
    assert app_only_from_secret("token", "Bearer " + jwt(azpacr="1", roles=["x"]))
    assert not app_only_from_secret("token", jwt(appidacr="2", roles=["x"]))  # certificate
    assert not app_only_from_secret("token", jwt(appidacr="1", scp="AllSites.Write"))  # a person
    assert not app_only_from_secret("token", "not-a-jwt")


def test_the_refusal_names_the_command_and_what_to_use() -> None:
    with pytest.raises(OptionError) as caught:
        refuse_secret_sign_in("provision", "secret")
    assert caught.value.option == "auth"
    assert "provision calls SharePoint REST" in str(caught.value)
    assert "certificate" in str(caught.value)
    refuse_secret_sign_in("provision", "certificate")
