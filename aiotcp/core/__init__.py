"""The sans-IO TCP core: no sockets, no asyncio, no clock (time is an argument).

Compiled with mypyc at install when possible (``setup.py``, ``aiotcp._compiled``).
"""
