"""Differential conformance suite: the same scenario against Linux and against aiotcp.

``script`` defines the ``.pkt`` format (a packetdrill-like timeline) and parses it;
``runner`` executes a script with the application side on the Linux kernel or on
aiotcp and a scripted raw-socket peer, in fresh network namespaces.  The scenarios
live in ``tests/conformance/<group>/*.pkt``; ``python -m aiotcp.conformance`` runs
them and prints a table.  ``musts`` lists RFC 9293's MUSTs and the extension RFCs
with aiotcp's status (scripts name what they check in a ``covers:`` header), and
``report`` turns a run into Markdown, ``docs/conformance.md`` among it.
"""

from aiotcp.conformance.script import Script, ScriptError, find_scripts, load_script, parse_script

__all__ = ["Script", "ScriptError", "find_scripts", "load_script", "parse_script"]
