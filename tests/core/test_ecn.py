"""Explicit Congestion Notification (RFC 3168), an option (``TcpOptions(ecn=True)``)."""

from __future__ import annotations

from aiotcp.core.segment import CE, CWR, ECE, ECT0, NOT_ECT
from aiotcp.testing.corekit import (
    L,
    R,
    closed,
    ecn_client,
    established_passive,
    listen,
    opts,
)

MSS = 1000


def test_ecn_setup_syn_carries_ece_and_cwr() -> None:
    """RFC 3168 §6.1.1: an ECN-setup SYN has ECE and CWR set; without the option
    neither."""
    for ecn, flags in ((True, ECE | CWR), (False, 0)):
        t = closed(opts(ecn=ecn))
        t.conn.connect(t.now)
        syn = t.output()[0]
        assert syn.flags & (ECE | CWR) == flags


def test_negotiated_when_the_synack_has_ece_only() -> None:
    t = ecn_client()
    assert t.conn.ecn_ok
    assert t.conn.info(t.now).options["ecn"] is True


def test_not_negotiated_without_ece_in_the_synack() -> None:
    t = ecn_client(peer_agrees=False)
    assert not t.conn.ecn_ok
    t.send(b"x" * 10)
    assert t.expect("PA").ecn == NOT_ECT


def test_passive_side_answers_an_ecn_setup_syn_with_ece() -> None:
    t = listen(opts(ecn=True))
    t.recv("SEW", mss=MSS)
    t.expect("SAE")
    t = listen(opts(ecn=False))
    t.recv("SEW", mss=MSS)
    assert t.expect("SA").flags & (ECE | CWR) == 0


def test_only_new_data_is_ecn_capable() -> None:
    """RFC 3168 §6.1.5: retransmissions, pure ACKs and window probes are not ECT."""
    t = ecn_client()
    t.send(b"d" * MSS)
    assert t.expect("PA").ecn == ECT0
    t.advance(t.conn.rtt.rto)  # lost: the RTO resends it
    assert t.expect("PA", seq=L(1)).ecn == NOT_ECT
    t.recv("PA", ack=L(1 + MSS), payload=b"r")
    assert t.expect("A", ack=R(2)).ecn == NOT_ECT


def test_ce_mark_is_echoed_until_cwr() -> None:
    """RFC 3168 §6.1.3: a CE mark is answered at once with ECE, and every ACK keeps
    ECE until a segment with CWR arrives."""
    t = ecn_client()
    t.recv("PA", payload=b"a" * 10, ecn=CE)
    t.expect("AE", ack=R(11))
    assert t.conn.counters.ce_received == 1
    t.recv("PA", payload=b"b" * 10, ecn=ECT0)
    t.expect("AE", ack=R(21))  # still echoing
    t.recv("PAW", payload=b"c" * 10, ecn=ECT0)  # the sender reduced: CWR
    t.expect("A", ack=R(31))


def test_ece_reduces_the_window_once_per_window_and_sends_cwr() -> None:
    """RFC 3168 §6.1.2: ECE makes the sender reduce as for a loss, without
    retransmitting, at most once per window; its next new data carries CWR."""
    t = ecn_client(congestion="newreno", initial_window=10)
    t.send(b"d" * (10 * MSS))
    assert len(t.output()) == 10
    t.recv("AE", ack=L(1 + MSS))
    assert t.conn.cc.ssthresh == 10 * MSS // 2  # half the flight when the echo came
    assert t.conn.cc.cwnd == t.conn.cc.ssthresh
    assert t.conn.counters.ecn_reductions == 1
    t.recv("AE", ack=L(1 + 6 * MSS))  # same window: no second reduction
    assert t.conn.counters.ecn_reductions == 1
    t.send(b"e" * MSS)  # pipe 4 segments < cwnd 5: room for one
    first_new = next(s for s in t.output() if s.payload)
    assert first_new.flags & CWR and first_new.ecn == ECT0
    assert t.conn.counters.retransmits == 0


def test_cubic_reduces_by_beta_on_ece() -> None:
    t = ecn_client(congestion="cubic", initial_window=10)
    t.send(b"d" * (10 * MSS))
    t.output()
    cwnd = t.conn.cc.cwnd
    t.recv("AE", ack=L(1 + MSS))
    assert t.conn.cc.ssthresh == int(cwnd * 0.7)


def test_ece_ignored_when_not_negotiated() -> None:
    t = ecn_client(peer_agrees=False, initial_window=10)
    t.send(b"d" * (10 * MSS))
    t.output()
    cwnd = t.conn.cc.cwnd
    t.recv("AE", ack=L(1 + MSS))
    assert t.conn.cc.cwnd >= cwnd
    assert t.conn.counters.ecn_reductions == 0


def test_passive_connection_marks_its_data() -> None:
    t = established_passive(opts(ecn=True))
    assert not t.conn.ecn_ok  # the SYN had no ECE/CWR
