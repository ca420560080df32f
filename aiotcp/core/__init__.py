"""The sans-IO TCP core: no sockets, no asyncio, no clock (time is an argument)."""
