"""Admin: API keys (a new key is shown once), webhook subscriptions and their delivery log, dead letters with
replay, alert rules (create, change, enable/disable: ``ui.components.alert_rules``). Every call needs the console's
key to carry the ``admin`` scope (SM_CONSOLE_API_KEY's ``console`` key does).

Revoking a key: nothing is preselected, the configured keys (bootstrap, console, simulator) are not offered — they
are rotated by setting a new value and restarting the API — and the key's name must be typed to confirm."""

from __future__ import annotations

import streamlit as st

from ui.components import actions, alert_rules, api
from ui.components.formatting import frame

SCOPES = ["read", "operate", "ingest", "admin"]
SCOPES_HELP = (
    "read: every GET · operate: acknowledge and resolve alerts, assign and complete work orders (a technician) · "
    "ingest: send readings · admin: everything else, and implies every other scope"
)
#: The configured keys (their setting): the API refuses to revoke them (409); they rotate with a new value.
PROTECTED = {"bootstrap": "SM_API_KEY", "console": "SM_CONSOLE_API_KEY", "simulator": "SM_SIMULATOR_API_KEY"}
NEW_KEY = "_admin_new_key"

st.title("Admin")
actions.show_flash()
keys_tab, hooks_tab, dead_tab, rules_tab = st.tabs(["API keys", "Webhooks", "Dead letters", "Alert rules"])

with keys_tab:
    new_key = st.session_state.pop(NEW_KEY, None)  # shown on this render only
    if new_key is not None:
        st.success(
            f"Key “{new_key['name']}” created. Copy it now: it is not stored and will not be shown again."
        )
        st.code(new_key["key"], language=None)
    left, middle, right = st.columns([2, 2, 1])
    name = left.text_input("Name", key="key_name")
    scopes = middle.multiselect("Scopes", SCOPES, default=["read"], key="key_scopes", help=SCOPES_HELP)
    right.write("")
    if right.button("Create key", key="key_create", disabled=not (name.strip() and scopes)):
        created = actions.run("Creating the key", "POST", "/api/v1/admin/api-keys",
                              json={"name": name.strip(), "scopes": scopes}, rerun=False)  # fmt: skip
        if created is not None:
            st.session_state[NEW_KEY] = {"name": created["name"], "key": created["key"]}
        st.rerun()
    include_revoked = st.toggle("Show revoked keys", key="key_revoked")
    page = api.load_items("/api/v1/admin/api-keys", "the API keys", include_revoked=include_revoked)
    if page is not None:
        keys, total = page
        st.dataframe(frame(keys, ["id", "name", "scopes", "created_at", "last_used_at", "revoked_at"],
                           ("created_at", "last_used_at", "revoked_at")), hide_index=True, width="stretch")  # fmt: skip
        active = [k for k in keys if not k.get("revoked_at")]
        protected = [k for k in active if k["name"] in PROTECTED]
        if protected:
            st.caption(
                "Not revocable here: "
                + ", ".join(f"#{k['id']} {k['name']} ({PROTECTED[k['name']]})" for k in protected)
                + ". These are the configured keys: to rotate one, set a new value in .env and restart the API "
                "(the old key is revoked at start-up)."
            )
        revocable = {k["id"]: k["name"] for k in active if k["name"] not in PROTECTED}
        if revocable:
            left, middle, right = st.columns([2, 2, 1])
            key_id = left.selectbox("Key to revoke", list(revocable), index=None, placeholder="Choose a key",
                                    format_func=lambda i: f"#{i} {revocable[i]}", key="key_revoke_id")  # fmt: skip
            typed = middle.text_input(
                "Type its name to confirm", key="key_revoke_confirm", disabled=key_id is None,
                placeholder=revocable.get(key_id, ""),
            )  # fmt: skip
            confirmed = key_id is not None and typed.strip() == revocable[key_id]
            right.write("")
            if right.button("Revoke", key="key_revoke", type="primary", disabled=not confirmed):
                actions.run(f"Revoking key #{key_id}", "DELETE", f"/api/v1/admin/api-keys/{key_id}",
                            done=lambda k: f"Key #{k['id']} ({k['name']}) revoked: it no longer works.")  # fmt: skip
            if key_id is not None and typed.strip() and not confirmed:
                st.caption(f"The name does not match: type {revocable[key_id]!r} to revoke key #{key_id}.")

with hooks_tab:
    page = api.load_items("/api/v1/webhooks", "the webhooks", 200)
    if page is not None:
        hooks, _ = page
        st.dataframe(frame(hooks, ["id", "name", "target", "event_types", "is_active", "created_at"], ("created_at",)),
                     hide_index=True, width="stretch")  # fmt: skip
    with st.form("webhook_create"):
        left, middle = st.columns(2)
        hook_name = left.text_input("Name", key="hook_name")
        target = middle.text_input("Target URL (https://…)", key="hook_target")
        events = st.text_input("Event types (comma-separated; empty = all)", key="hook_events")
        if st.form_submit_button("Add webhook"):
            actions.run("Adding the webhook", "POST", "/api/v1/webhooks", json={
                "name": hook_name.strip(), "target": target.strip(),
                "event_types": [e.strip() for e in events.split(",") if e.strip()],
            }, done=lambda h: f"Webhook #{h['id']} ({h['name']}) added.")  # fmt: skip
    st.markdown("#### Delivery log")
    status = st.selectbox("Status", ["(any)", "pending", "delivered", "failed"], key="deliveries_status")
    page = api.load_items("/api/v1/notifications/deliveries", "the deliveries", 200,
                          status=None if status == "(any)" else status)  # fmt: skip
    if page is not None:
        deliveries, total = page
        st.caption(f"{total} deliveries (newest 200 shown)" if total > 200 else f"{total} deliveries")
        st.dataframe(frame(deliveries, ["id", "webhook_id", "channel", "target", "event", "status", "attempts",
                                        "last_error", "created_at", "delivered_at"], ("created_at", "delivered_at")),
                     hide_index=True, width="stretch")  # fmt: skip

with dead_tab:
    show = st.selectbox("Show", ["not replayed", "replayed", "all"], key="dead_show")
    replayed = {"not replayed": False, "replayed": True, "all": None}[show]
    page = api.load_items("/api/v1/admin/dead-letters", "the dead letters", 200, replayed=replayed)
    if page is not None:
        letters, total = page
        st.caption(f"{total} dead letters")
        st.dataframe(frame(letters, ["id", "event_type", "handler", "attempts", "error", "created_at", "replayed_at"],
                           ("created_at", "replayed_at")), hide_index=True, width="stretch")  # fmt: skip
        pending = {
            d["id"]: f"#{d['id']} {d['event_type']} → {d['handler']}"
            for d in letters
            if not d.get("replayed_at")
        }
        if pending:
            left, right = st.columns([3, 1])
            letter_id = left.selectbox("Dead letter", list(pending), format_func=pending.get, key="dead_id")
            right.write("")
            if right.button("Replay", key="dead_replay"):
                actions.run(f"Replaying dead letter #{letter_id}", "POST",
                            f"/api/v1/admin/dead-letters/{letter_id}/replay",
                            done=lambda r: f"Dead letter #{r['dead_letter']['id']} replayed to "
                            f"{', '.join(r['handlers']) or 'no handler'}.")  # fmt: skip

with rules_tab:
    alert_rules.render()
