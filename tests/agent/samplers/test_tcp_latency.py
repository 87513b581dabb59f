"""TCP latency histograms vs bpftrace on the same tracepoints and the same window (srtt/jitter via BTF reads)."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from ioinet_helpers import tcp_transfer

from rezolus_core import histogram
from support.live import Bpftrace, total

pytestmark = pytest.mark.root


def _assert_same_percentiles(ours, samples, label, percentiles=(50, 99)):
    """The percentiles of our histogram land within one bucket of the reference samples'."""
    reference = histogram.from_values(samples)
    got = histogram.percentile_indices(ours, list(percentiles))
    want = histogram.percentile_indices(reference, list(percentiles))
    print(label, "ours", got, histogram.total(ours), "reference", want, histogram.total(reference))
    for g, w in zip(got, want, strict=True):
        assert g is not None
        assert w is not None
        assert abs(g - w) <= 1, (label, got, want)


class _Listener:
    """A loopback listener that accepts and closes connections until stopped."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0), backlog=CONNECTS)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept)
        self.thread.start()

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            conn.close()

    def connect(self) -> None:
        """One connection, closed at once."""
        socket.create_connection(("127.0.0.1", self.port)).close()

    def close(self) -> None:
        """Stop accepting."""
        self.done.set()
        self.thread.join(timeout=10)
        self.server.close()


# The references keep every measured value in a map that is printed at exit: printing per
# event would make bpftrace wake its reader inside the interval being measured, and that
# cost then lands in whichever program runs after it on the same tracepoint.
CONNECT = """
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->newstate == 2/ { @s[args->skaddr] = nsecs; }
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->oldstate == 2 && @s[args->skaddr] != 0/ {
    if (args->newstate == 1) { @v[cpu, nsecs] = nsecs - @s[args->skaddr]; }
    delete(@s[args->skaddr]);
}
"""


# p99 of 1,000 connects is the 10th-largest value of a sparse tail: in CI (2026-12-03) it
# was two buckets apart (108 vs 106, p50 and p90 equal). 5,000 put 50 values above it, and
# the listener's backlog holds them all: with 128, a full accept queue stretched the tail
# (p99 at buckets 97-110) and dropped SYNs made a run last up to 46 s; with 5,000,
# p99 at 96-100 and about 1 s per run in 8 of 8 runs.
CONNECTS = 5000


def _map_values(out):
    """Values of the ``@v[cpu, time]: value`` lines bpftrace prints at exit (keys are unique per event)."""
    return [int(line.rsplit(":", 1)[1]) for line in out.splitlines() if line.startswith("@v[")]


def test_connect_latency_matches_bpftrace(load_samplers, bpftrace):
    """SYN_SENT -> ESTABLISHED time agrees with bpftrace on the same tracepoint (p50, p99 within one bucket).

    bcc's tcpstates is not used as the reference: it stamps the SYN_SENT transition after
    its own perf_submit, which shortens every interval by its event cost (about 6 us here,
    several buckets at loopback handshake times of 10-70 us).
    """
    loaded = load_samplers("tcp_connect_latency")
    for _attempt in range(2):
        listener = _Listener()
        ref = Bpftrace(bpftrace, CONNECT, env={"BPFTRACE_MAP_KEYS_MAX": "65536"})
        try:
            before = total(loaded.read(), "tcp_connect_latency")
            for _ in range(CONNECTS):
                listener.connect()
            after = total(loaded.read(), "tcp_connect_latency")
        finally:
            listener.close()
            out = ref.stop()
        samples = _map_values(out)
        if samples:
            break
        print("bpftrace recorded nothing; its stderr:", ref.errors[-2000:])
    assert samples, f"the bpftrace reference recorded no connect twice: {ref.errors[-2000:]}"
    ours = np.asarray(after - before, dtype=np.uint64)
    assert histogram.total(ours) >= CONNECTS, "every connect is timed"
    # bpftrace's perf-tracepoint programs are skipped while another BPF program runs on the
    # CPU, so under load it can miss events, and the ones it misses are the slow ones that
    # overlap other activity: p99 is compared only when the reference saw every connect.
    complete = len(samples) >= histogram.total(ours)
    _assert_same_percentiles(ours, samples, "connect", (50, 90, 99) if complete else (50, 90))


SRTT = """
tracepoint:tcp:tcp_probe /args->srtt > 0/ {
    $sk = (struct tcp_sock *)args->skaddr;
    printf("%u %u\\n", args->srtt, $sk->mdev_us >> 2);
}
"""


def test_srtt_and_jitter_match_bpftrace_btf_reads(load_samplers, bpftrace):
    """tcp_srtt and tcp_jitter agree with bpftrace reading tcp_sock through BTF (p50, p99 within one bucket).

    The reference's perf tracepoint misses events while another BPF program runs on the
    CPU, and the ones it misses skew its tail (at 95 % seen, jitter p99 two buckets off):
    the transfer is repeated (three times at most) until it saw every event, and p99 is
    compared only on such a run.
    """
    loaded = load_samplers("tcp_receive")
    for _ in range(3):
        ref = Bpftrace(bpftrace, SRTT)
        try:
            before = loaded.read()
            tcp_transfer(32 << 20, chunk=4096)
            after = loaded.read()
        finally:
            out = ref.stop()
        pairs = [line.split() for line in out.splitlines() if line.count(" ") == 1]
        seen = histogram.total(np.asarray(total(after, "tcp_srtt") - total(before, "tcp_srtt"), dtype=np.uint64))
        print("reference saw", len(pairs), "of", seen)
        if len(pairs) >= seen:
            break
    for name, column in (("tcp_srtt", 0), ("tcp_jitter", 1)):
        ours = np.asarray(total(after, name) - total(before, name), dtype=np.uint64)
        assert histogram.total(ours) >= 500
        percentiles = (50, 99) if len(pairs) >= seen else (50,)
        _assert_same_percentiles(ours, [int(p[column]) * 1000 for p in pairs], name, percentiles)


PACKET = """
tracepoint:tcp:tcp_probe /args->data_len > 0 && @start[args->skaddr] == 0/ { @start[args->skaddr] = nsecs; }
tracepoint:tcp:tcp_rcv_space_adjust /@start[args->skaddr] != 0/ {
    @v[cpu, nsecs] = nsecs - @start[args->skaddr];
    delete(@start[args->skaddr]);
}
tracepoint:tcp:tcp_destroy_sock { delete(@start[args->skaddr]); }
"""


def _delayed_reads(messages: int, delay: float) -> None:
    """Send a 100-byte message, wait ``delay`` seconds, read it on the other end; ``messages`` times.

    The delay is the workload (it sets the latency being measured), not synchronisation:
    at ~1 ms the order in which two tracers' programs run on one event (~1 us) is noise.
    """
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        with client, conn:
            for _ in range(messages):
                client.sendall(b"m" * 100)
                time.sleep(delay)
                got = b""
                while len(got) < 100:
                    got += conn.recv(100 - len(got))


def test_packet_latency_matches_bpftrace(load_samplers, bpftrace):
    """tcp_packet_latency agrees with a bpftrace script on the same tracepoints (p50, p90 within one bucket)."""
    loaded = load_samplers("tcp_packet_latency")
    ref = Bpftrace(bpftrace, PACKET, env={"BPFTRACE_MAP_KEYS_MAX": "65536"})
    try:
        before = total(loaded.read(), "tcp_packet_latency")
        _delayed_reads(300, 0.001)
        after = total(loaded.read(), "tcp_packet_latency")
    finally:
        out = ref.stop()
    samples = _map_values(out)
    ours = np.asarray(after - before, dtype=np.uint64)
    assert histogram.total(ours) >= 300
    # bpftrace's perf-tracepoint programs miss some events here (about 8 % of connects in
    # our runs; our raw tracepoints see every one), so p99 of a few hundred reads rests on
    # different samples: compare p50 and p90.
    _assert_same_percentiles(ours, samples, "packet", (50, 90))
