"""The host side: raw socket, route lookup, port reservation and the RST guard."""
