"""Admin → API keys: revoking asks for the key's name, nothing is preselected, and the configured keys
(bootstrap, console, simulator: rotated through their setting) are not offered, with the reason shown."""

from __future__ import annotations

import uuid

from tests.ui.conftest import ConsoleApi, assert_clean, open_page, texts

PROTECTED = ("bootstrap", "console", "simulator")


def _by_key(widgets, key: str):
    return next(w for w in widgets if w.key == key)


def test_revocation_needs_the_name_and_the_configured_keys_are_not_offered(console: ConsoleApi) -> None:
    name = f"ui-revoke-{uuid.uuid4().hex[:6]}"
    created = console.call("POST", "/api/v1/admin/api-keys", json={"name": name, "scopes": ["read"]})
    assert created.status_code == 201, created.text
    key = created.json()
    listed = console.get("/api/v1/admin/api-keys", limit=1000)["items"]
    protected_ids = {k["id"] for k in listed if k["name"] in PROTECTED and not k["revoked_at"]}
    assert len(protected_ids) == 3  # the API registered the three configured keys

    at = open_page("views/admin.py")
    choose = _by_key(at.selectbox, "key_revoke_id")
    assert choose.value is None  # nothing preselected
    offered = set(choose.options)
    assert f"#{key['id']} {name}" in offered
    assert not any(o.split(" ", 1)[1] in PROTECTED for o in offered), offered
    reason = " ".join(texts(at.caption))
    assert "Not revocable here" in reason and "SM_CONSOLE_API_KEY" in reason and "restart the API" in reason
    assert _by_key(at.button, "key_revoke").disabled  # nothing chosen: nothing to revoke

    choose.set_value(key["id"]).run()
    assert _by_key(at.button, "key_revoke").disabled  # chosen, not confirmed
    _by_key(at.text_input, "key_revoke_confirm").input("not-the-name").run()
    assert _by_key(at.button, "key_revoke").disabled
    assert any("does not match" in t for t in texts(at.caption))
    still = next(
        k for k in console.get("/api/v1/admin/api-keys", limit=1000)["items"] if k["id"] == key["id"]
    )
    assert still["revoked_at"] is None

    _by_key(at.text_input, "key_revoke_confirm").input(name).run()
    button = _by_key(at.button, "key_revoke")
    assert not button.disabled
    button.click().run()
    assert_clean(at)
    assert any(f"({name}) revoked" in t for t in texts(at.success)), texts(at.success) + texts(at.error)
    keys = console.get("/api/v1/admin/api-keys", include_revoked=True, limit=1000)["items"]
    assert next(k for k in keys if k["id"] == key["id"])["revoked_at"] is not None
    for k in keys:  # the configured keys are untouched
        if k["id"] in protected_ids:
            assert k["revoked_at"] is None, k


def test_operate_is_offered_when_creating_a_key(console: ConsoleApi) -> None:
    at = open_page("views/admin.py")
    scopes = _by_key(at.multiselect, "key_scopes")
    assert "operate" in scopes.options
