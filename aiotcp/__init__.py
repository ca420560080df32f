"""aiotcp: a TCP stack in Python, in user space, on asyncio."""

__version__ = "0.1.0"
