"""Differential conformance suite: the same scenario against Linux and against aiotcp.

``script`` defines the ``.pkt`` format (a packetdrill-like timeline) and parses it;
``runner`` executes a script with the application side on the Linux kernel or on
aiotcp and a scripted raw-socket peer, in fresh network namespaces, over IPv4 or
IPv6.  The scenarios live in ``aiotcp/conformance/scripts/<group>/*.pkt``, shipped
with the package so that ``python -m aiotcp.conformance`` runs them anywhere aiotcp is installed
(``--stack linux``: against the kernel alone, to test its TCP).  ``musts`` lists
RFC 9293's MUSTs and the extension RFCs with aiotcp's status (scripts name what
they check in a ``covers:`` header), and ``report`` turns a run into Markdown,
``docs/conformance.md`` among it.
"""

from aiotcp.conformance.script import Script, ScriptError, find_scripts, load_script, parse_script

__all__ = ["Script", "ScriptError", "find_scripts", "load_script", "parse_script"]
