"""The live adapter to Binance USD-M futures: the REST gateway and the market and user-data streams.

Built on the transport in ``utils/`` (rest, signing, timesync, ratelimit, websocket); the live shell
(``runtime/live.py``) wires these to the execution core. Nothing here decides anything: it sends what it is told
and hands back parsed domain objects.
"""
