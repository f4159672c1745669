"""Matrix client-server API, just what the enforcer needs.

Messages go out with ``PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}``: the homeserver
treats a repeated txnId from the same device as the same event, so a retry after a timeout (or after
a crash between sending and recording the delivery) does not post twice. Synapse keeps txnIds for about
30 minutes; the outbox records delivery right after the 200, so the window for a duplicate is the time
between the homeserver's answer and one atomic state save.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

import requests


class MatrixError(Exception):
    def __init__(self, message: str, status: Optional[int] = None, errcode: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.errcode = errcode


class MatrixClient:
    def __init__(self, homeserver: str, access_token: str, timeout: float,
                 session: Optional[requests.Session] = None):
        self.homeserver = homeserver.rstrip("/")
        self._token = access_token
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "openclaw-budget-enforcer"

    def __repr__(self) -> str:  # never show the token
        return f"MatrixClient({self.homeserver!r})"

    def _request(self, method: str, path: str, json_body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        url = self.homeserver + path
        try:
            resp = self.session.request(method, url, json=json_body, timeout=self.timeout,
                                        headers={"Authorization": f"Bearer {self._token}"})
        except requests.RequestException as exc:
            raise MatrixError(f"Matrix homeserver {self.homeserver} unreachable: {_short(exc)}") from None
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code != 200:
            errcode = data.get("errcode") if isinstance(data, dict) else None
            error = data.get("error") if isinstance(data, dict) else None
            raise MatrixError(f"Matrix answered HTTP {resp.status_code} {errcode or ''} {error or ''}".strip(),
                              status=resp.status_code, errcode=errcode)
        return data if isinstance(data, dict) else {}

    def send(self, room_id: str, txn_id: str, body: str, html: Optional[str] = None,
             msgtype: str = "m.text") -> str:
        content: Dict[str, Any] = {"msgtype": msgtype, "body": body}
        if html:
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = html
        path = (f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/"
                f"{quote(txn_id, safe='')}")
        data = self._request("PUT", path, content)
        event_id = data.get("event_id")
        if not isinstance(event_id, str):
            raise MatrixError("Matrix accepted the message but returned no event_id")
        return event_id

    def whoami(self) -> str:
        data = self._request("GET", "/_matrix/client/v3/account/whoami")
        return str(data.get("user_id"))

    def joined_rooms(self) -> List[str]:
        data = self._request("GET", "/_matrix/client/v3/joined_rooms")
        rooms = data.get("joined_rooms")
        return [str(r) for r in rooms] if isinstance(rooms, list) else []


def _short(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known"):
        if marker in text:
            return marker
    return text.splitlines()[0][:200] if text else type(exc).__name__


def deliver_outbox(client: MatrixClient, room_id: str, outbox: List[Dict[str, Any]],
                   now_iso: str, delayed_note) -> Tuple[List[Dict[str, Any]], int, int, Optional[str]]:
    """Send queued messages in order; stop at the first failure so order is kept. Returns
    (remaining outbox, sent, failed, last error). ``delayed_note(entry)`` prefixes late messages."""
    remaining = list(outbox)
    sent = failed = 0
    last_error: Optional[str] = None
    while remaining:
        entry = remaining[0]
        body, html = entry["body"], entry.get("html")
        note = delayed_note(entry)
        if note:
            body = f"{note}\n{body}"
            html = f"<i>{note}</i><br>{html}" if html else None
        try:
            client.send(room_id, entry["txn_id"], body, html)
        except MatrixError as exc:
            entry["attempts"] = int(entry.get("attempts", 0)) + 1
            entry["last_error"] = str(exc)
            entry["last_attempt"] = now_iso
            failed += 1
            last_error = str(exc)
            break
        remaining.pop(0)
        sent += 1
    return remaining, sent, failed, last_error
