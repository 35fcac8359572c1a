"""Binance's request-level errors (parameters, keys, signatures, time, limits, outages) as the server answers them.

Each function returns a ``BinanceError`` carrying the code, Binance's message and the HTTP status Binance uses.
The engine's own business errors (filters, margin, unknown orders) live in ``simulator.codes`` and
``utils.filters``; this module covers what Binance's gateway answers before a request reaches the matching engine.
"""

from __future__ import annotations

from simulator.codes import mandatory, not_required
from utils.errors import BinanceError

__all__ = ["mandatory", "not_required"]  # re-exported: the engine's -1102 / -1106 are the gateway's too

LONG_PATTERN = "^[0-9]{1,20}$"
DECIMAL_PATTERN = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"

UNKNOWN_ERROR_MESSAGE = "Unknown error, please check your request or try again later."
SERVICE_UNAVAILABLE_MESSAGE = "Service Unavailable."
THROTTLED_MESSAGE = ("Request throttled by system-level protection. Reduce-only/close-position orders are exempt. "
                     "Please try again.")


def illegal_characters(parameter: str, legal_range: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{parameter}'; legal range is '{legal_range}'.")


def duplicate_parameter() -> BinanceError:
    return BinanceError(-1101, "Duplicate values for a parameter detected.")


def malformed(parameter: str) -> BinanceError:
    """A value of the right characters that is still not one the parameter takes (a bad enum, a bad boolean)."""
    return mandatory(parameter)


def not_all_read(read: int, sent: int) -> BinanceError:
    return BinanceError(-1104, f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'.")


def empty_parameter(parameter: str) -> BinanceError:
    return BinanceError(-1105, f"Parameter '{parameter}' was empty.")


def bad_recv_window() -> BinanceError:
    return BinanceError(-1131, "recvWindow must be less than 60000")


def invalid_interval() -> BinanceError:
    return BinanceError(-1120, "Invalid interval.")


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def unsupported_combination(detail: str) -> BinanceError:
    """A feature the simulator does not implement (the message says which), refused as Binance refuses a bad mix."""
    return BinanceError(-1014, f"Unsupported order combination. ({detail} is not supported by the simulator)")


def timestamp_outside_recv_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def bad_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


def api_key_format() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", http_status=401)


def api_key_rejected(remote_ip: str) -> BinanceError:
    return BinanceError(-2015, f"Invalid API-key, IP, or permissions for action, request ip: {remote_ip}",
                        http_status=401)


def invalid_listen_key() -> BinanceError:
    return BinanceError(-1125, "This listenKey does not exist.")


def too_many_requests(limit: int) -> BinanceError:
    return BinanceError(-1003, f"Too many requests; current limit is {limit} requests per minute. Please use the "
                               "websocket for live updates to avoid polling the API.", http_status=429)


def ip_banned(until_ms: int) -> BinanceError:
    return BinanceError(-1003, f"Way too many requests; IP banned until {until_ms}. Please use the websocket for "
                               "live updates to avoid bans.", http_status=418)


def too_many_orders(limit: int, interval: str) -> BinanceError:
    return BinanceError(-1015, f"Too many new orders; current limit is {limit} orders per {interval}.",
                        http_status=429)


def unknown_path(method: str, path: str) -> BinanceError:
    return BinanceError(-5000, f"Path {path}, Method {method} is invalid", http_status=404)


def unknown_error() -> BinanceError:
    """HTTP 503 "Unknown error": the request may or may not have executed."""
    return BinanceError(-1000, UNKNOWN_ERROR_MESSAGE, http_status=503)


def service_unavailable() -> BinanceError:
    """HTTP 503 "Service Unavailable.": the request failed, nothing executed."""
    return BinanceError(-1001, SERVICE_UNAVAILABLE_MESSAGE, http_status=503)


def throttled() -> BinanceError:
    """-1008: system-level protection refused the request (nothing executed)."""
    return BinanceError(-1008, THROTTLED_MESSAGE, http_status=503)


def unauthorized() -> BinanceError:
    return BinanceError(-1002, "You are not authorized to execute this request.", http_status=403)
