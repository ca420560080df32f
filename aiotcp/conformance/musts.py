"""RFC 9293's MUST requirements and the extension RFCs aiotcp claims, with aiotcp's status.

This is the data behind the requirement tables of ``docs/conformance.md`` (issue 10).
Two kinds of facts live here, kept apart on purpose:

- ``RFC9293_MUSTS``: what the RFC says.  Every ``MUST-n`` of RFC 9293, n = 1 ... 69
  (the RFC numbers them in order of writing, not of sections, and skips none), with
  the section holding its inline ``(MUST-n)`` marker and a short paraphrase.  Facts
  worth knowing when reading the RFC: MUST-22 has no inline marker at all (it exists
  only in Appendix B, "Same mechanism for SYNs"; the §3.8.3 sentence it stands for is
  untagged); MUST-14 is tagged in §3.1 and in §3.7.1 (listed under §3.7.1, where it
  is defined); MUST-57 and MUST-63 are tagged inside the RFC 1122 quotation of
  §3.9.2.3; Appendix B lists MUST-15, MUST-20, MUST-46 and MUST-57 twice and MUST-56
  three times, once per case.
- ``MUST_STATUS`` / ``REQUIREMENTS``: what aiotcp does about each, and which tests
  outside the conformance scripts show it (``path::function`` of pytest tests).  The
  conformance scripts name what they cover themselves (their ``covers:`` header), so
  a requirement's "tested by" is the union of both.
  ``tests/test_conformance_report.py`` checks that every cited test exists and that
  every requirement is listed.

Labels: ``MUST-n``; ``RFCnnnn`` or ``RFCnnnn-<section>`` for the extension RFCs
(``RFC5961-3``: RFC 5961 §3); ``RFC9293-<section>`` for RFC 9293 requirements that
carry no MUST number (the segment acceptability test of §3.10.7.4 is the largest).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Implemented = Literal["yes", "partly", "no", "n.a."]

RFC9293_MUSTS: tuple[tuple[int, str, str], ...] = (
    (1, "3.1", "Treat the window field as an unsigned number"),
    (2, "3.1", "The sender computes the checksum"),
    (3, "3.1", "The receiver checks the checksum"),
    (4, "3.1", "Support the EOL, NOP and MSS options"),
    (5, "3.1", "Accept a TCP option in any segment"),
    (6, "3.1", "Ignore, without error, options it does not implement (they have a length)"),
    (7, "3.1", "Be prepared for an illegal option length (e.g. zero)"),
    (8, "3.4.1", "Use a clock-driven component in ISN selection"),
    (9, "3.4.1", "The ISN's pseudorandom function is not computable from outside"),
    (10, "3.5", "Support simultaneous open"),
    (11, "3.5", "Remember whether SYN-RECEIVED came from a passive or an active OPEN"),
    (12, "3.6", "Tell the application whether the peer closed normally or aborted"),
    (13, "3.6.1", "Linger in TIME-WAIT for 2 MSL after an active close"),
    (14, "3.7.1", "Implement sending and receiving the MSS option"),
    (15, "3.7.1", "Without an MSS option assume a send MSS of 536 (IPv4) / 1220 (IPv6)"),
    (16, "3.7.1", "Effective send MSS: the smaller of the send MSS and what IP allows"),
    (17, "3.7.4", "The application can disable Nagle's algorithm per connection"),
    (18, "3.8.1", "Compute the RTO as RFC 6298 says, with Karn's algorithm"),
    (19, "3.8.2", "Implement slow start, congestion avoidance and RTO backoff"),
    (20, "3.8.3", "Excessive retransmissions: advice to IP at R1, close at R2"),
    (21, "3.8.3", "The application can set R2 per connection"),
    (22, "3.8.3", "Handle SYN retransmissions the same way (Appendix B only)"),
    (23, "3.8.3", "R2 for a SYN gives at least 3 minutes of retransmission"),
    (24, "3.8.4", "Keep-alives, if implemented, can be turned on or off per connection"),
    (25, "3.8.4", "Keep-alives default to off"),
    (26, "3.8.4", "Send keep-alives only when idle, with no sent data outstanding"),
    (27, "3.8.4", "The keep-alive interval is configurable"),
    (28, "3.8.4", "The keep-alive interval defaults to at least two hours"),
    (29, "3.8.4", "One unanswered keep-alive probe does not mean a dead connection"),
    (30, "3.8.5", "Support the urgent mechanism"),
    (31, "3.8.5", "Support urgent data of any length"),
    (32, "3.8.5", "Tell the application asynchronously when urgent data arrives or advances"),
    (33, "3.8.5", "Let the application learn how much urgent data remains"),
    (34, "3.8.6", "The sender is robust against the peer shrinking its window"),
    (35, "3.8.6", "Probe a window that shrank to zero in the standard way"),
    (36, "3.8.6.1", "Support probing of zero windows"),
    (37, "3.8.6.1", "Keep the connection open while zero-window probes are answered"),
    (38, "3.8.6.2.1", "Silly window syndrome avoidance in the sender"),
    (39, "3.8.6.2.2", "Silly window syndrome avoidance in the receiver"),
    (40, "3.8.6.3", "Delay an ACK by less than 0.5 s"),
    (41, "3.9.1.1", "A passive OPEN does not affect existing connections"),
    (42, "3.9.1.1", "LISTEN on a port whose connections are in SYN-SENT/SYN-RECEIVED"),
    (43, "3.9.1.1", "OPEN takes an optional local IP address"),
    (44, "3.9.1.1", "Ask IP for a source address for the first SYN if none was given"),
    (45, "3.9.1.1", "Afterwards keep using the connection's local address"),
    (46, "3.9.1.1", "Reject an OPEN to a broadcast or multicast address"),
    (47, "3.9.1.8", "A mechanism reports soft errors to the application"),
    (48, "3.9.1.9", "The application can set the Differentiated Services field"),
    (49, "3.9.2", "The TTL of sent segments is configurable"),
    (50, "3.9.2", "Ignore IP options TCP does not understand"),
    (51, "3.9.2.1", "The application can give a source route on an active OPEN"),
    (52, "3.9.2.1", "That source route overrides one received in a datagram"),
    (53, "3.9.2.1", "Save a received return route and use it for the connection"),
    (54, "3.9.2.2", "Act on ICMP errors, directed to the connection they concern"),
    (55, "3.9.2.2", "Silently discard ICMP Source Quench"),
    (56, "3.9.2.2", "Do not abort on soft ICMP errors (unreachable 0/1/5, time exceeded, ...)"),
    (57, "3.9.2.3", "Silently discard a SYN sent to a broadcast or multicast address"),
    (58, "3.10.7.4", "Aggregate ACKs whenever possible"),
    (59, "3.10.7.4", "Process every queued segment before sending an ACK"),
    (60, "3.9.1.2", "Without a PUSH flag on SEND: never buffer data indefinitely"),
    (61, "3.9.1.2", "Without a PUSH flag on SEND: set PSH on the last buffered segment"),
    (62, "3.8.5", "The urgent pointer points just past the urgent data"),
    (63, "3.9.2.3", "Ignore a SYN from an invalid source address"),
    (64, "3.2", "Process options that do not start on a word boundary"),
    (65, "3.2", "Send the MSS option only in SYN segments"),
    (66, "3.4", "Process RST and URG even with a zero receive window"),
    (67, "3.7.1", "The MSS sent is at most MMS_R - 20"),
    (68, "3.1", "Every option but EOL and NOP has a length field"),
    (69, "3.1", "Header bytes after an EOL option are zero padding"),
)
"""``(n, section, paraphrase)`` for every MUST-n of RFC 9293, in number order."""


@dataclass(frozen=True)
class Status:
    """What aiotcp does about one requirement.

    ``tests`` are pytest tests outside the scripts (``path::function``)
    that show it; the scripts that cover it declare that themselves (``covers:``).
    """

    implemented: Implemented
    tests: tuple[str, ...] = ()
    note: str = ""


_PARSER = "tests/io/test_packet_parser.py::"
_DATA = "tests/core/test_data.py::"
_HANDSHAKE = "tests/core/test_handshake.py::"
_RETRANSMIT = "tests/core/test_retransmit.py::"
_TIMERS = "tests/core/test_timers.py::"
_RECOVERY = "tests/core/test_recovery.py::"
_ICMP = "tests/core/test_icmp.py::"
_ICMP_NET = "tests/net/test_icmp_interop.py::"
_IP_FIELDS = "tests/net/test_ip_header_options.py::"
_MUSTS = "tests/core/test_rfc9293_musts.py::"
_RFC = "tests/net/test_rfc_scenarios.py::"

MUST_STATUS: dict[int, Status] = {
    1: Status(
        "yes",
        (
            _DATA + "test_peer_scale_14_gives_gigabyte_window",
            _DATA + "test_window_field_capped_without_scaling",
        ),
        "window fields are unpacked unsigned and kept as Python ints; every script's "
        "win 65535 would read as -1 if signed",
    ),
    2: Status(
        "yes",
        (
            _PARSER + "test_scapy_validates_our_checksum_and_options",
            "tests/net/test_gso.py::test_super_segments_arrive_byte_exact_with_software_checksums",
        ),
        "the scripted peer verifies the checksum of every segment it receives, in every script",
    ),
    3: Status(
        "yes",
        (
            _PARSER + "test_bad_checksum_is_rejected",
            _PARSER + "test_flipped_payload_bit_fails_the_checksum",
            _PARSER + "test_a_wire_trusts_a_partial_checksum_only_on_a_gro_aggregate",
            _RFC + "test_segment_with_a_bad_checksum_is_dropped",
            "tests/net/test_wires.py::"
            "test_a_corrupted_segment_with_the_seed_as_checksum_is_dropped_from_a_wire",
        ),
        "on by default; ``Stack(verify_checksum=False)`` exists for benchmarks; a partial "
        "checksum (the pseudo-header sum alone) is trusted only where one can come from: "
        "software interfaces, and GRO aggregates on a NIC (docs/checksums.md)",
    ),
    4: Status(
        "yes",
        (
            _PARSER + "test_options_after_eol_are_ignored",
            _MUSTS + "test_options_not_on_a_word_boundary_are_parsed",
        ),
    ),
    5: Status(
        "yes",
        (
            _PARSER + "test_unknown_option_is_skipped_and_known_ones_still_parsed",
            _HANDSHAKE + "test_timestamps_echoed_on_every_segment",
        ),
    ),
    6: Status(
        "yes",
        (_PARSER + "test_unknown_option_is_skipped_and_known_ones_still_parsed",),
        "unknown kinds are skipped by their length and counted",
    ),
    7: Status(
        "yes",
        (
            _PARSER + "test_illegal_option_length_is_rejected",
            _PARSER + "test_random_options_on_a_valid_header_never_raise",
        ),
        "aiotcp drops the segment; Linux stops parsing options and keeps it; the RFC "
        "suggests a reset: each is 'prepared to handle' it",
    ),
    8: Status(
        "yes",
        (_HANDSHAKE + "test_isn_depends_on_secret_tuple_and_clock",),
        "ISN = 4 µs clock + keyed hash (RFC 6528); scripts see only relative numbers",
    ),
    9: Status(
        "yes",
        (
            _HANDSHAKE + "test_isn_depends_on_secret_tuple_and_clock",
            _HANDSHAKE + "test_connect_uses_rfc6528_isn_without_override",
        ),
        "F is BLAKE2s keyed with a 32-byte random secret per stack",
    ),
    10: Status(
        "yes",
        (
            _HANDSHAKE + "test_simultaneous_open_via_syn_received",
            _HANDSHAKE + "test_simultaneous_open_completed_by_plain_ack",
            "tests/core/test_link.py::test_simultaneous_open_over_link",
            _RFC + "test_simultaneous_open_goes_through_syn_received",
        ),
    ),
    11: Status(
        "yes",
        (
            _HANDSHAKE + "test_new_syn_in_passive_syn_received_returns_to_listen",
            _HANDSHAKE + "test_new_syn_in_active_syn_received_gets_challenge_ack",
            _RFC + "test_rst_in_syn_received_returns_the_listener_to_listen",
        ),
        "``Connection.passive``: a passive SYN-RECEIVED returns to LISTEN on RST or SYN",
    ),
    12: Status(
        "yes",
        (
            "tests/core/test_events.py::test_reset_events",
            "tests/core/test_events.py::test_normal_close_event",
            "tests/net/test_interop.py::test_kernel_abort_gives_connection_reset",
        ),
        "a FIN is EOF; a RST is ECONNRESET (ECONNREFUSED in SYN-SENT)",
    ),
    13: Status(
        "yes",
        (
            "tests/core/test_close.py::test_time_wait_lasts_two_msl",
            "tests/core/test_close.py::test_time_wait_msl_is_configurable",
            "tests/net/test_interop.py::test_time_wait_expires_after_2msl",
        ),
        "msl = 30 s, so 60 s like Linux; the scripts show TIME-WAIT answering, not its length",
    ),
    14: Status(
        "yes",
        (
            _HANDSHAKE + "test_effective_mss_is_min_of_both_sides",
            _HANDSHAKE + "test_syn_mss_clipped_to_route_mtu",
            _RFC + "test_peer_mss_bounds_every_segment",
        ),
    ),
    15: Status(
        "yes",
        (
            _HANDSHAKE + "test_default_peer_mss_without_option_is_the_familys",
            "tests/core/test_listener.py::test_cookie_takes_the_mss_of_the_family",
        ),
        "536 over IPv4, 1220 over IPv6 (a SYN cookie keeps 1200, its table's entry below)",
    ),
    16: Status(
        "yes",
        (
            _HANDSHAKE + "test_effective_mss_is_min_of_both_sides",
            _HANDSHAKE + "test_timestamps_take_option_space_from_mss",
            _ICMP + "test_fragmentation_needed_lowers_mss_and_resends",
            _RFC + "test_peer_mss_bounds_every_segment",
        ),
    ),
    17: Status(
        "yes",
        (
            _TIMERS + "test_nodelay_sends_small_segments_at_once",
            _RFC + "test_nagle_holds_small_segments_while_one_is_unacknowledged",
        ),
        "``nodelay=True`` (TCP_NODELAY), also on a live connection",
    ),
    18: Status(
        "yes",
        (
            _RETRANSMIT + "test_karn_no_sample_from_retransmitted_segment",
            _RETRANSMIT + "test_estimator_first_sample_rfc6298_2_2",
            _RETRANSMIT + "test_estimator_next_samples_rfc6298_2_3",
            _RETRANSMIT + "test_timestamps_give_rtt_sample_even_for_retransmission",
        ),
        "RFC 6298 with Linux's 200 ms floor (``rto_min``) instead of §2.4's 1 s",
    ),
    19: Status(
        "yes",
        (
            _RECOVERY + "test_slow_start_grows_cwnd_per_ack",
            _RECOVERY + "test_congestion_avoidance_adds_one_smss_per_window",
            _RETRANSMIT + "test_rto_backs_off_exponentially",
            _RFC + "test_lost_data_is_retransmitted_with_exponential_backoff",
        ),
    ),
    20: Status(
        "partly",
        (
            _RETRANSMIT + "test_r1_threshold_reports_delivery_problem",
            _RETRANSMIT + "test_retransmissions_give_up_with_timeout",
            "tests/net/test_impaired.py::test_a_link_that_stays_down_times_out_and_frees_everything",
            _RFC + "test_a_protocol_hears_of_retransmissions_past_r1",
        ),
        "R2 (``retries``) closes the connection; at R1 the asyncio layer logs a warning and "
        "calls a protocol's ``delivery_problem``, but no negative advice reaches IP "
        "(routing is the kernel's)",
    ),
    21: Status(
        "yes",
        (
            _RETRANSMIT + "test_syn_retries_configurable",
            _TIMERS + "test_user_timeout_aborts_unacknowledged_data",
        ),
        "``retries``, ``syn_retries`` and ``user_timeout`` per connection",
    ),
    22: Status(
        "yes",
        (
            _RETRANSMIT + "test_r1_also_applies_to_syn_retries",
            _RETRANSMIT + "test_syn_retries_end_in_timeout",
        ),
        "the RFC tags this one only in Appendix B",
    ),
    23: Status(
        "partly",
        (_RETRANSMIT + "test_syn_retries_end_in_timeout",),
        "the default ``syn_retries=6`` gives up after 127 s, as Linux's tcp_syn_retries=6 "
        "does: short of 3 minutes; ``syn_retries=7`` (255 s) meets it",
    ),
    24: Status(
        "yes",
        (
            _TIMERS + "test_keepalive_probe_after_idle",
            "tests/net/test_interop_behaviour.py::test_keepalive_finds_a_silent_peer",
        ),
        "``keepalive`` per connection (SO_KEEPALIVE)",
    ),
    25: Status("yes", (_TIMERS + "test_keepalive_off_by_default",)),
    26: Status(
        "yes",
        (
            _TIMERS + "test_keepalive_waits_while_data_is_outstanding",
            _TIMERS + "test_keepalive_idle_measured_from_last_segment",
        ),
    ),
    27: Status("yes", (_TIMERS + "test_keepalive_probe_after_idle",), "``keepalive_idle``"),
    28: Status("yes", (_TIMERS + "test_keepalive_linux_defaults",), "7200 s"),
    29: Status(
        "yes",
        (
            _TIMERS + "test_keepalive_gives_up_after_count_probes",
            _TIMERS + "test_keepalive_answer_resets_probing",
        ),
        "gives up after ``keepalive_count`` (9) unanswered probes",
    ),
    30: Status(
        "yes",
        (
            _DATA + "test_urgent_pointer_reported_and_data_kept_in_line",
            _DATA + "test_send_urgent_sets_urg_and_pointer_past_the_data",
            _DATA + "test_urgent_pointer_may_point_past_what_the_send_buffer_holds",
            _RFC + "test_urgent_data_stays_in_line",
            _RFC + "test_urgent_data_written_from_the_transport_reaches_a_kernel_as_a_kernels_does",
        ),
        "received URG is processed, the data kept in line (RFC 6093); "
        "``transport.write_urgent(data)`` sends urgent data as ``send(MSG_OOB)`` does "
        "(asyncio has no such call)",
    ),
    31: Status(
        "yes",
        (
            _DATA + "test_send_urgent_sets_urg_and_pointer_past_the_data",
            _RFC + "test_urgent_data_stays_in_line",
        ),
        "pointers beyond the segment are kept",
    ),
    32: Status(
        "yes",
        (
            _DATA + "test_urgent_pointer_reported_only_when_it_advances",
            _MUSTS + "test_urgent_pointer_is_processed_with_a_zero_receive_window",
            _RFC + "test_a_protocol_hears_where_urgent_data_ends",
        ),
        "when the pointer advances the transport calls a protocol's "
        "``urgent_data_received(end_offset)`` (asyncio has no such call)",
    ),
    33: Status(
        "yes",
        (
            _DATA + "test_urgent_pointer_reported_and_data_kept_in_line",
            _RFC + "test_a_protocol_hears_where_urgent_data_ends",
        ),
        "the call carries the stream offset where the urgent data ends: the application "
        "knows how much of it is still to read",
    ),
    34: Status(
        "yes",
        (
            "tests/core/test_properties.py::test_sender_never_sends_outside_window_or_beyond_written",
            _DATA + "test_window_update_accepted_only_from_newer_segments",
        ),
        "a shrunk window only stops new data; the usable window is clamped at zero",
    ),
    35: Status(
        "yes",
        (
            _TIMERS + "test_persist_probe_sent_and_backs_off",
            _RETRANSMIT + "test_retransmission_into_zero_window_still_probes",
        ),
    ),
    36: Status(
        "yes",
        (
            _TIMERS + "test_zero_window_arms_persist_timer",
            _RFC + "test_zero_window_is_probed_with_backoff_until_it_opens",
            _RFC + "test_own_zero_window_answers_probes_and_reopens_with_an_update",
        ),
    ),
    37: Status(
        "yes",
        (_TIMERS + "test_persist_keeps_probing_while_peer_answers",),
        "only ``user_timeout`` (off by default, like TCP_USER_TIMEOUT) can end it",
    ),
    38: Status(
        "yes",
        (
            _TIMERS + "test_sender_avoids_silly_window",
            _TIMERS + "test_sender_sends_window_of_half_the_max",
            _TIMERS + "test_small_window_data_forced_out_by_persist_override",
        ),
    ),
    39: Status(
        "yes",
        (
            _DATA + "test_small_read_does_not_send_window_update",
            _DATA + "test_reading_reopens_a_zero_window_with_an_update",
        ),
    ),
    40: Status(
        "yes",
        (
            _TIMERS + "test_delayed_ack_sent_within_40ms",
            _RFC + "test_acks_are_delayed_but_every_second_full_segment_is_acked_at_once",
        ),
        "``delayed_ack_timeout`` 40 ms by default; the option itself is not capped at 0.5 s",
    ),
    41: Status(
        "yes",
        (
            _HANDSHAKE + "test_listen_twice_is_an_error",
            "tests/net/test_scripted_peer.py::test_busy_port_raises_eaddrinuse",
        ),
        "a second listen on a port fails with EADDRINUSE",
    ),
    42: Status(
        "yes",
        (
            "tests/core/test_listener.py::test_syn_creates_half_open_connection_in_syn_queue",
            "tests/core/test_listener.py::test_accept_returns_connections_in_order",
            "tests/net/test_scripted_peer.py::test_backlog_holds_syn_received_entries_and_drops_the_rest",
        ),
        "the listener keeps listening while its half-open children are in SYN-RECEIVED",
    ),
    43: Status(
        "yes",
        ("tests/net/test_scripted_peer.py::test_simultaneous_close_goes_through_closing",),
        "``open_connection(local_addr=)``, ``start_server(host=)``; the runner uses both",
    ),
    44: Status(
        "yes",
        ("tests/net/test_route.py::test_source_address_and_mtu_follow_the_interface",),
        "``aiotcp.io.route.lookup``: the kernel's routing decision picks the source",
    ),
    45: Status(
        "yes",
        ("tests/net/test_interop.py::test_server_echoes_kernel_client_byte_exact",),
        "the local address is fixed in the TCB; a child of a 0.0.0.0 listener uses the "
        "address the SYN was sent to",
    ),
    46: Status(
        "yes",
        (
            "tests/net/test_asyncio_parity.py::"
            "test_a_connect_to_a_broadcast_or_multicast_address_fails_as_the_kernels",
        ),
        "a multicast or broadcast destination fails before any port is claimed, with the "
        "kernel's ENETUNREACH (``tcp_v4_connect``)",
    ),
    47: Status(
        "yes",
        (
            _RETRANSMIT + "test_r1_threshold_reports_delivery_problem",
            _ICMP + "test_hard_error_on_established_connection_is_only_recorded",
            _ICMP + "test_timeout_after_soft_errors_reports_the_last_one",
            _ICMP_NET + "test_errors_on_an_open_connection_are_soft_then_reported_on_timeout",
        ),
        "the last ICMP error's errno is ``soft_error`` in ``get_extra_info('aiotcp')`` and "
        "``ss`` (``soft_err:``), rides on ``DeliveryProblem`` at R1, and is the error a "
        "connection that then times out reports (Linux's ``sk_err_soft``)",
    ),
    48: Status(
        "yes",
        (
            _IP_FIELDS + "test_tos_and_ttl_given_at_connect_mark_every_segment",
            _IP_FIELDS + "test_setsockopt_on_a_live_connection_changes_the_next_segments",
        ),
        "``tos=`` or ``setsockopt(IP_TOS)``: the DS bits of every segment, handshake and "
        "GSO frames alike; a listener's pass to its SYN-ACKs and connections",
    ),
    49: Status(
        "yes",
        (
            _IP_FIELDS + "test_tos_and_ttl_given_at_connect_mark_every_segment",
            _IP_FIELDS + "test_a_listeners_tos_and_ttl_carry_to_its_syn_ack_and_connections",
        ),
        "``ttl=`` or ``setsockopt(IP_TTL)`` per connection (−1: the host's "
        "``ip_default_ttl``, which GSO frames follow too)",
    ),
    50: Status(
        "yes",
        ("tests/io/test_bpf.py::test_ip_options_shift_the_port_offset",),
        "the IP header length is honoured, the options themselves ignored",
    ),
    51: Status("no", (), "no API for IP options, so no source routes"),
    52: Status("n.a.", (), "no source route can be given (MUST-51), so none overrides another"),
    53: Status("no", (), "IP options, a received return route included, are ignored"),
    54: Status(
        "yes",
        (
            _ICMP + "test_port_unreachable_refuses_connection_attempt",
            _ICMP + "test_icmp_quoting_unknown_sequence_is_ignored",
            _ICMP + "test_fragmentation_needed_lowers_mss_and_resends",
            _ICMP_NET + "test_connect_fails_at_once_with_the_kernels_errno",
            _ICMP_NET + "test_fragmentation_needed_lowers_the_mss_and_the_transfer_completes",
            _ICMP_NET + "test_forged_errors_quoting_unsent_sequence_numbers_are_ignored",
            "tests/io/test_icmp6_errors.py::test_errors_about_our_segments_are_admitted_and_named",
        ),
        "raw ICMP and ICMPv6 sockets, filtered in the kernel to errors quoting our ports, "
        "hand each error to the connection of the quoted 4-tuple if the quoted sequence "
        "number is in flight (RFC 5927), over both families",
    ),
    55: Status(
        "yes",
        ("tests/io/test_icmp_errors.py::test_the_parser_drops_what_the_filter_would_and_says_why",),
        "Source Quench is dropped by the ICMP socket's filter and, past it, by the parser",
    ),
    56: Status(
        "partly",
        (
            _ICMP + "test_hard_error_on_established_connection_is_only_recorded",
            _ICMP + "test_half_open_passive_connection_goes_only_on_a_hard_error",
            _ICMP + "test_soft_errors_also_end_a_connection_attempt",
        ),
        "a synchronized connection never aborts on an ICMP error, hard or soft, and a "
        "half-open passive one only on a hard one; but a connection attempt (SYN-SENT) "
        "ends on a soft error too, as Linux's does (``tcp_v4_err``; RFC 5461 §4.1 "
        "describes this widely deployed deviation): a connect to an unreachable network "
        "fails with ENETUNREACH in a round trip instead of after every SYN retry",
    ),
    57: Status(
        "yes",
        (
            "tests/net/test_hostile.py::test_syns_to_broadcast_and_multicast_addresses_are_dropped",
            "tests/io/test_bpf.py::test_only_segments_addressed_to_this_host_pass",
        ),
        "the raw socket's BPF filter admits only frames addressed to this host "
        "(``PACKET_HOST``), as Linux's ``tcp_v4_rcv``: a SYN to a broadcast or multicast "
        "address never reaches Python",
    ),
    58: Status(
        "yes",
        (_MUSTS + "test_a_batch_of_segments_is_acknowledged_once",),
        "the core is fed a whole receive batch before its output is pulled",
    ),
    59: Status("yes", (_MUSTS + "test_a_batch_of_segments_is_acknowledged_once",)),
    60: Status(
        "yes",
        (_DATA + "test_send_emits_one_segment_with_psh",),
        "no PUSH flag on SEND: data leaves as soon as window, Nagle and SWS avoidance allow",
    ),
    61: Status(
        "yes",
        (
            _DATA + "test_send_emits_one_segment_with_psh",
            "tests/io/test_gso_runs.py::test_consecutive_full_segments_form_one_run_ending_with_psh",
        ),
    ),
    62: Status(
        "yes",
        (
            _DATA + "test_send_urgent_sets_urg_and_pointer_past_the_data",
            _DATA + "test_urgent_pointer_reported_and_data_kept_in_line",
        ),
    ),
    63: Status(
        "yes",
        (_PARSER + "test_malformed_ip_is_rejected_with_reason",),
        "sources in 0/8 and 224/4 and above are dropped (``aiotcp.io.packet``); the "
        "kernel's martian filter drops loopback sources from other interfaces",
    ),
    64: Status("yes", (_MUSTS + "test_options_not_on_a_word_boundary_are_parsed",)),
    65: Status("yes", (_MUSTS + "test_mss_option_only_on_syn_segments",)),
    66: Status(
        "yes",
        (
            _MUSTS + "test_rst_is_processed_with_a_zero_receive_window",
            _MUSTS + "test_urgent_pointer_is_processed_with_a_zero_receive_window",
            _DATA + "test_zero_window_still_processes_acks",
        ),
        "no script can make either stack's window zero on cue",
    ),
    67: Status(
        "yes",
        (
            _HANDSHAKE + "test_syn_mss_clipped_to_route_mtu",
            "tests/core/test_units.py::test_advertised_mss_follows_mtu",
            _RFC + "test_advertised_mss_fits_the_link_mtu",
        ),
        "the MSS offered is min(mss, route MTU - 40); aiotcp reassembles no fragments",
    ),
    68: Status(
        "yes",
        (_PARSER + "test_unknown_option_is_skipped_and_known_ones_still_parsed",),
        "every option aiotcp sends but NOP has a length byte",
    ),
    69: Status(
        "yes",
        (
            _PARSER + "test_scapy_validates_our_checksum_and_options",
            _MUSTS + "test_options_not_on_a_word_boundary_are_parsed",
        ),
        "aiotcp pads with NOPs and never sends EOL, so nothing follows one",
    ),
}


@dataclass(frozen=True)
class Requirement:
    """A row of the non-MUST tables: an extension RFC (or one of its sections), or
    an unnumbered RFC 9293 requirement."""

    label: str
    title: str
    status: Status


def _req(
    label: str, title: str, implemented: Implemented, tests: tuple[str, ...], note: str = ""
) -> Requirement:
    return Requirement(label, title, Status(implemented, tests, note))


EXTENSION_RFCS = (7323, 2018, 5681, 6582, 6298, 6528, 5961, 1337, 6691, 9438, 6675)
"""The extension RFCs aiotcp claims (issue 10), in the issue's order."""

_SACK = "tests/core/test_sack_recovery.py::"
_RESET = "tests/core/test_reset.py::"
_CLOSE = "tests/core/test_close.py::"

EXTENSIONS: tuple[Requirement, ...] = (
    _req(
        "RFC7323-2",
        "Window Scale option",
        "yes",
        (
            _HANDSHAKE + "test_window_scale_negotiated_both_ways",
            _HANDSHAKE + "test_window_scale_above_14_is_treated_as_14",
            _RFC + "test_window_scaling_is_applied_both_ways",
        ),
    ),
    _req(
        "RFC7323-3",
        "Timestamps option",
        "yes",
        (
            _HANDSHAKE + "test_timestamps_echoed_on_every_segment",
            _RFC + "test_timestamps_are_echoed_and_paws_drops_old_segments",
        ),
    ),
    _req(
        "RFC7323-4",
        "RTT measurement from timestamps",
        "yes",
        (
            _RETRANSMIT + "test_timestamps_give_rtt_sample_even_for_retransmission",
            _RECOVERY + "test_echo_older_than_last_timeout_is_not_an_rtt_sample",
        ),
        "RTT samples are invisible on the wire",
    ),
    _req(
        "RFC7323-5",
        "PAWS",
        "yes",
        (
            _DATA + "test_paws_rejects_old_timestamp",
            _DATA + "test_paws_forgets_ts_recent_after_24_days_idle",
        ),
        "TSval clock with a per-connection random offset (§5.4, §7)",
    ),
    _req(
        "RFC2018-2",
        "SACK-permitted, only in SYNs",
        "yes",
        (_HANDSHAKE + "test_sack_needs_both_sides",),
    ),
    _req(
        "RFC2018-3",
        "SACK option format: at most 4 blocks (3 with timestamps)",
        "yes",
        (_RECOVERY + "test_at_most_three_sack_blocks_with_timestamps",),
    ),
    _req(
        "RFC2018-4",
        "Receiver: blocks, the most recent first",
        "yes",
        (
            _RECOVERY + "test_out_of_order_ack_carries_sack_block",
            _RECOVERY + "test_most_recent_sack_block_first",
            _RFC + "test_out_of_order_data_is_sacked_and_delivered_once_in_order",
        ),
    ),
    _req(
        "RFC2018-5",
        "Sender: SACKed data is not retransmitted",
        "yes",
        (_SACK + "test_sacked_data_is_never_retransmitted_in_recovery",),
    ),
    _req(
        "RFC2883",
        "D-SACK (extends RFC 2018; implemented too)",
        "yes",
        (
            _SACK + "test_duplicate_segment_is_reported_with_a_dsack_block",
            _SACK + "test_dsack_block_comes_before_the_ordinary_sack_blocks",
        ),
    ),
    _req(
        "RFC5681-3.1",
        "Slow start and congestion avoidance",
        "yes",
        (
            _RECOVERY + "test_slow_start_grows_cwnd_per_ack",
            _RECOVERY + "test_congestion_avoidance_adds_one_smss_per_window",
            _RECOVERY + "test_timeout_sets_loss_window",
        ),
        "IW 10 (RFC 6928), byte counting (RFC 3465)",
    ),
    _req(
        "RFC5681-3.2",
        "Fast retransmit / fast recovery",
        "yes",
        (
            _RECOVERY + "test_third_duplicate_ack_triggers_fast_retransmit",
            _RECOVERY + "test_fast_retransmit_halves_ssthresh_and_goes_out_at_once",
            _RFC + "test_three_duplicate_acks_trigger_fast_retransmit",
        ),
    ),
    _req(
        "RFC5681-4.1",
        "Restarting idle connections",
        "yes",
        (_RECOVERY + "test_cwnd_restarts_after_idle_longer_than_rto",),
    ),
    _req(
        "RFC5681-4.2",
        "Generating ACKs: every second segment, out-of-order at once",
        "yes",
        (
            _TIMERS + "test_every_second_full_segment_is_acked_at_once",
            _TIMERS + "test_out_of_order_segment_acked_immediately_even_with_delack",
            _TIMERS + "test_segment_filling_a_hole_acked_immediately",
        ),
    ),
    _req(
        "RFC6582",
        "NewReno partial ACKs",
        "yes",
        (
            _RECOVERY + "test_partial_ack_retransmits_next_hole",
            _RECOVERY + "test_no_second_fast_retransmit_for_same_window",
        ),
    ),
    _req(
        "RFC6298-2",
        "RTO computation",
        "yes",
        (
            _RETRANSMIT + "test_estimator_initial_rto_is_one_second",
            _RETRANSMIT + "test_estimator_first_sample_rfc6298_2_2",
            _RETRANSMIT + "test_estimator_next_samples_rfc6298_2_3",
            _RETRANSMIT + "test_estimator_min_and_max_bounds",
        ),
        "RTO floor 200 ms (Linux) where §2.4 says 1 s (a SHOULD)",
    ),
    _req(
        "RFC6298-3",
        "Karn: no samples from retransmissions",
        "yes",
        (_RETRANSMIT + "test_karn_no_sample_from_retransmitted_segment",),
    ),
    _req(
        "RFC6298-5",
        "Managing the retransmission timer, backoff",
        "yes",
        (
            _RETRANSMIT + "test_data_retransmitted_after_rto",
            _RETRANSMIT + "test_rto_backs_off_exponentially",
            _RETRANSMIT + "test_timer_stopped_when_everything_acked",
            _RETRANSMIT + "test_rto_after_lost_syn_falls_back_to_three_seconds",
        ),
    ),
    _req(
        "RFC6528",
        "ISN = M + F(4-tuple, secret)",
        "yes",
        (
            _HANDSHAKE + "test_isn_depends_on_secret_tuple_and_clock",
            _HANDSHAKE + "test_connect_uses_rfc6528_isn_without_override",
        ),
        "scripts see ISN-relative numbers only",
    ),
    _req(
        "RFC5961-3",
        "RST: exact sequence number, else challenge ACK",
        "yes",
        (
            _RESET + "test_in_window_inexact_rst_gets_challenge_ack",
            _RESET + "test_out_of_window_rst_is_silently_dropped",
            _RFC + "test_rst_needs_the_exact_sequence_number",
        ),
    ),
    _req(
        "RFC5961-4",
        "SYN in a synchronized state: challenge ACK",
        "yes",
        (
            _RESET + "test_syn_in_synchronized_state_gets_challenge_ack",
            _RFC + "test_syn_in_established_gets_a_challenge_ack",
        ),
    ),
    _req(
        "RFC5961-5",
        "ACK value check against blind data injection",
        "yes",
        (
            _DATA + "test_ack_of_unsent_data_gets_challenge_ack_and_is_dropped",
            _DATA + "test_ack_far_below_snd_una_gets_challenge_ack",
            _RFC + "test_ack_of_unsent_or_too_old_data_is_challenged_and_dropped",
        ),
    ),
    _req(
        "RFC5961-7",
        "Challenge ACK throttling",
        "yes",
        (_RESET + "test_challenge_acks_are_rate_limited",),
        "``challenge_ack_limit`` per second",
    ),
    _req(
        "RFC1337",
        "TIME-WAIT assassination: ignore RST in TIME-WAIT",
        "yes",
        (
            _CLOSE + "test_time_wait_ignores_rst_rfc1337",
            _CLOSE + "test_time_wait_rst_closes_without_rfc1337",
            _RFC + "test_rst_in_time_wait",
        ),
        "on by default (``rfc1337``); Linux's default is off",
    ),
    _req(
        "RFC6691",
        "MSS excludes options; the sender subtracts them",
        "yes",
        (
            _HANDSHAKE + "test_timestamps_take_option_space_from_mss",
            _RFC + "test_peer_mss_bounds_every_segment",
        ),
    ),
    _req(
        "RFC9438",
        "CUBIC congestion control",
        "yes",
        (
            "tests/core/test_cubic.py::test_window_follows_the_cubic_curve_and_plateaus_at_w_max",
            "tests/core/test_cubic.py::test_multiplicative_decrease_is_beta_0_7",
            "tests/core/test_cubic.py::test_fast_convergence_lowers_w_max",
            "tests/core/test_cubic.py::test_cubic_transfer_over_a_lossy_link_is_byte_exact",
        ),
        "``congestion='cubic'``; no script probes window growth",
    ),
    _req(
        "RFC6675",
        "SACK-based loss recovery",
        "yes",
        (
            _SACK + "test_second_hole_is_resent_before_any_partial_ack",
            _SACK + "test_without_sack_the_second_hole_waits_for_the_partial_ack",
            _SACK + "test_sack_recovery_beats_newreno_under_moderate_loss",
        ),
    ),
)
"""The extension RFCs, by section where scripts or tests tell sections apart."""

RFC9293_SECTIONS: tuple[Requirement, ...] = (
    _req(
        "RFC9293-3.1",
        "Header: reserved bits zero when sent, ignored when received",
        "yes",
        (_PARSER + "test_valid_packet_parses",),
    ),
    _req(
        "RFC9293-3.5",
        "Three-way handshake, duplicate SYNs",
        "yes",
        (
            _HANDSHAKE + "test_syn_received_duplicate_syn_resends_syn_ack",
            _HANDSHAKE + "test_old_duplicate_syn_ack_is_reset_and_handshake_continues",
        ),
    ),
    _req(
        "RFC9293-3.6",
        "Closing: FIN sequences, half-close, TIME-WAIT (MAY-2: reopen)",
        "yes",
        (
            _CLOSE + "test_simultaneous_close_goes_through_closing",
            _CLOSE + "test_half_close_keeps_reading",
            _CLOSE + "test_time_wait_new_syn_with_higher_seq_may_reopen",
        ),
    ),
    _req(
        "RFC9293-3.7.4",
        "Nagle's algorithm (SHLD-7)",
        "yes",
        (_TIMERS + "test_nagle_holds_small_segment_while_data_unacked",),
        "classic Nagle; Linux uses Minshall's variant",
    ),
    _req(
        "RFC9293-3.8.6",
        "Flow control: send only within the offered window",
        "yes",
        (_DATA + "test_send_respects_peer_window",),
    ),
    _req(
        "RFC9293-3.10.4",
        "CLOSE: RST for unread data (SHLD-3), orphaned FIN-WAIT-2",
        "yes",
        (
            _CLOSE + "test_close_with_unread_data_resets",
            _CLOSE + "test_data_after_close_from_a_peer_that_has_not_seen_our_fin_gets_its_rst",
            "tests/net/test_asyncio_parity.py::"
            "test_closing_with_input_left_in_the_reader_resets_the_connection",
            _TIMERS + "test_orphaned_fin_wait_2_times_out",
        ),
        "unread bytes include those an asyncio stream reader holds",
    ),
    _req(
        "RFC9293-3.10.5",
        "ABORT: <SEQ=SND.NXT><CTL=RST>",
        "yes",
        (_RESET + "test_abort_rst_carries_snd_nxt",),
    ),
    _req(
        "RFC9293-3.10.7.1",
        "CLOSED: every segment but a RST gets a RST",
        "yes",
        (
            _RESET + "test_closed_answers_ack_with_rst_from_ack_field",
            _RESET + "test_closed_answers_non_ack_with_rst_ack",
            _RESET + "test_closed_never_answers_rst",
        ),
    ),
    _req(
        "RFC9293-3.10.7.2",
        "LISTEN: RST ignored, ACK answered by RST, SYN opens",
        "yes",
        (_HANDSHAKE + "test_listen_ignores_rst", _HANDSHAKE + "test_listen_answers_ack_with_reset"),
    ),
    _req(
        "RFC9293-3.10.7.3",
        "SYN-SENT: ACK and RST checks",
        "yes",
        (
            _HANDSHAKE + "test_syn_ack_with_ack_below_iss_gets_reset",
            _HANDSHAKE + "test_rst_without_ack_in_syn_sent_is_ignored",
        ),
    ),
    _req(
        "RFC9293-3.10.7.4",
        "Other states: acceptability test, RST/SYN/ACK/URG/text/FIN steps",
        "yes",
        (
            "tests/core/test_state_matrix.py::test_state_by_segment_kind",
            _DATA + "test_segment_beyond_window_is_unacceptable",
            _DATA + "test_window_update_accepted_only_from_newer_segments",
        ),
    ),
)
"""RFC 9293 requirements without a MUST number that scripts check (the acceptability
test of §3.10.7.4 is written with lowercase "should"s and no tag)."""

REQUIREMENTS: dict[str, Requirement] = {
    **{f"MUST-{n}": Requirement(f"MUST-{n}", text, MUST_STATUS[n]) for n, _, text in RFC9293_MUSTS},
    **{r.label: r for r in (*EXTENSIONS, *RFC9293_SECTIONS)},
}
"""Every label a script may name in ``covers:``, with its row."""

MUST_SECTIONS: dict[int, str] = {n: section for n, section, _ in RFC9293_MUSTS}

_LABEL = re.compile(r"^(?:MUST-[1-9]\d*|RFC\d{3,4}(?:-\d+(?:\.\d+)*)?)$")


def check_label(label: str) -> str:
    """``label`` if it names a known requirement; ``ValueError`` otherwise (a typo in a
    ``covers:`` header must fail the parse, not silently drop out of the table)."""
    if not _LABEL.match(label):
        raise ValueError(f"bad requirement label {label!r} (MUST-n, RFCnnnn or RFCnnnn-section)")
    if label not in REQUIREMENTS:
        raise ValueError(f"unknown requirement {label!r} (see aiotcp.conformance.musts)")
    return label


def label_key(label: str) -> tuple[int, ...]:
    """Sort key: MUST-2 before MUST-10; RFC 9293 §3.10.7.1 before §3.10.7.4."""
    return tuple(int(n) for n in re.findall(r"\d+", label))
