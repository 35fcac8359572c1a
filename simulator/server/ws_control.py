"""Binance's WebSocket control frames (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET/GET_PROPERTY): reading them.

``read_control_frame`` turns a client's text frame into a ``ControlRequest`` or a ``ControlError`` shaped like
Binance's answers (``{"error": {"code": 2, "msg": "Invalid request: ..."}, "id": ...}``; code 3 for bad JSON).
The id may be an unsigned integer, a string (the official SDK sends UUIDs) or null. Pure: safe on any input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
MAX_ID_LENGTH = 64
MAX_FRAME_LENGTH = 65_536

RequestId = int | str | None


@dataclass(frozen=True, slots=True)
class ControlRequest:
    method: str
    params: tuple[Any, ...]
    request_id: RequestId


@dataclass(frozen=True, slots=True)
class ControlError(Exception):
    code: int
    msg: str
    request_id: RequestId = None

    def frame(self) -> str:
        return json.dumps({"error": {"code": self.code, "msg": self.msg}, "id": self.request_id},
                          separators=(",", ":"))


def result_frame(result: Any, request_id: RequestId) -> str:
    return json.dumps({"result": result, "id": request_id}, separators=(",", ":"))


def read_control_frame(text: str) -> ControlRequest:
    """The request in ``text``, or raises ``ControlError``."""
    if len(text) > MAX_FRAME_LENGTH:
        raise ControlError(2, "Invalid request: message too long")
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        position = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ControlError(3, f"Invalid JSON: {getattr(exc, 'msg', 'too deeply nested')}{position}") from None
    if not isinstance(document, dict):
        raise ControlError(2, "Invalid request: expected an object")
    request_id = document.get("id")
    if isinstance(request_id, bool) or not (
            request_id is None or (isinstance(request_id, int) and 0 <= request_id < 2**63)
            or (isinstance(request_id, str) and len(request_id) <= MAX_ID_LENGTH)):
        raise ControlError(2, "Invalid request: request ID must be an unsigned integer")
    unknown = sorted(set(document) - {"method", "params", "id"})
    if unknown:
        raise ControlError(0, "Unknown property", request_id)
    method = document.get("method")
    if method is None:
        raise ControlError(2, "Invalid request: missing field `method`", request_id)
    if not isinstance(method, str) or method not in METHODS:
        raise ControlError(2, f"Invalid request: unknown variant `{str(method)[:40]}`, expected one of "
                              f"`{'`, `'.join(METHODS)}`", request_id)
    params = document.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise ControlError(2, "Invalid request: params must be an array", request_id)
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not all(isinstance(p, str) and 0 < len(p) <= 200 for p in params):
            raise ControlError(2, "Invalid request: stream name must be a string", request_id)
    elif method == "SET_PROPERTY":
        if len(params) != 2 or params[0] != "combined":
            raise ControlError(0, "Unknown property", request_id)
        if not isinstance(params[1], bool):
            raise ControlError(1, "Invalid value type: expected Boolean", request_id)
    elif method == "GET_PROPERTY":
        if len(params) != 1 or params[0] != "combined":
            raise ControlError(0, "Unknown property", request_id)
    elif params:
        raise ControlError(2, "Invalid request: too many parameters", request_id)
    return ControlRequest(method, tuple(params), request_id)
