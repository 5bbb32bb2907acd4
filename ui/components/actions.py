"""Writes from pages: run one API call, report the outcome on the next render (a "flash" message), never raise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from ui.api_client import ApiError
from ui.components import api

_FLASH = "_console_flash"


def flash(kind: str, text: str) -> None:
    """Show ``text`` (kind ``success`` or ``error``) on the next render."""
    st.session_state[_FLASH] = (kind, text)


def show_flash() -> None:
    """Show (once) the outcome of the last action of this session."""
    message = st.session_state.pop(_FLASH, None)
    if message is None:
        return
    kind, text = message
    (st.success if kind == "success" else st.error)(text)


def run(what: str, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
        done: Callable[[Any], str] | None = None, rerun: bool = True) -> Any | None:  # fmt: skip
    """Send the write; on success flash ``done(answer)`` (or "<what>: done") and rerun; on failure flash the
    API's problem detail. Returns the answer (None on failure) when ``rerun`` is False."""
    try:
        answer = api.send(method, path, json=json, params=params)
    except ApiError as exc:
        if exc.status is None:
            text = f"{what} failed: the API is down ({exc.detail})."
        else:
            text = f"{what} failed: HTTP {exc.status}: {exc.detail}"
            details = "; ".join(
                f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in api.problem_errors(exc)
            )
            if details:
                text += f" ({details})"
        st.session_state[_FLASH] = ("error", text)
        if rerun:
            st.rerun()
        return None
    st.session_state[_FLASH] = ("success", done(answer) if done else f"{what}: done.")
    if rerun:
        st.rerun()
    return answer
