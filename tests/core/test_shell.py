"""The service shell: one option table, one strict reader, one set of address rules."""

from __future__ import annotations

import pytest

from rezolus_core import address, config
from rezolus_core.shell import Option, Spec

HUGE = "9" * 400

SPEC = Spec(
    prog="rezolus-test",
    description="test",
    options=(
        Option("interval", "duration", 1_000_000_000, "interval", key="interval", flag="--interval",
               minimum=10_000_000),
        Option("max_bytes", "size", 2**20, "cap", key="store.max_bytes", flag="--max-bytes", minimum=1024),
        Option("count", "integer", 0, "count", key="count", flag="--count", minimum=0),
        Option("listen", "listen", address.parse_listen("127.0.0.1:1"), "listen", key="listen", flag="--listen"),
        Option("source", "source", "tcp://127.0.0.1:4241", "source", key="source", flag="--source"),
        Option("verbose", "boolean", default=False, help="verbose", key="verbose", flag="--verbose"),
        Option("secret", "string", "", "file only", key="secret"),
    ),
)


def _write(tmp_path, text: str):
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def test_defaults_file_and_flags_in_that_order(tmp_path) -> None:
    """Defaults, then the file, then flags; every value has its declared type."""
    assert SPEC.load(None)["interval"] == 1_000_000_000
    path = _write(tmp_path, 'interval = "2s"\ncount = 4\n[store]\nmax_bytes = "1MiB"\n')
    loaded = SPEC.load(path, {"interval": "500ms", "count": None, "verbose": True})
    loaded.finish()
    assert loaded.values["interval"] == 500_000_000
    assert loaded.values["count"] == 4
    assert loaded.values["max_bytes"] == 2**20
    assert loaded.values["verbose"] is True
    assert loaded.values["listen"] == address.ListenAddress("127.0.0.1", 1)


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        ("intervall = '1s'\n", {}, "t.toml: intervall: unknown key"),
        ("[store]\nmax_byte = 1\n", {}, "t.toml: store.max_byte: unknown key"),
        ("interval = 5\n", {}, "t.toml: interval: expected a string, got 5"),
        ("", {"interval": "5ms"}, "command line: --interval: 5ms is shorter than the minimum 10ms"),
        ("", {"interval": "-1s"}, "command line: --interval: '-1s' is not a duration: it must be positive"),
        ("", {"interval": "0s"}, "command line: --interval: 0s must be positive"),
        ("", {"interval": f"{HUGE}s"}, "is too large for a duration"),
        ("", {"max_bytes": f"{HUGE}GiB"}, "command line: --max-bytes:"),
        (f"[store]\nmax_bytes = {HUGE}\n", {}, "t.toml: store.max_bytes:"),
        (f"[store]\nmax_bytes = '{HUGE}'\n", {}, "is too large for a size"),
        ("[store]\nmax_bytes = -5\n", {}, "must be positive"),
        ("", {"count": "-1"}, "command line: --count: must be at least 0, got -1"),
        (f"count = {HUGE}\n", {}, "t.toml: count:"),
        ("", {"listen": "nowhere"}, "is not HOST:PORT"),
        ("", {"source": "garbage"}, "command line: --source: 'garbage' is not an endpoint"),
        ("verbose = 'yes'\n", {}, "t.toml: verbose: expected true or false"),
    ],
)
def test_every_problem_is_one_line_naming_its_origin(tmp_path, text, flags, message) -> None:
    """File problems name the file and key, flag problems the flag; never an OverflowError."""
    with pytest.raises(config.ConfigError) as info:
        SPEC.load(_write(tmp_path, text), flags).finish()
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 200


def test_a_bad_file_value_is_reported_even_when_a_flag_overrides_it(tmp_path) -> None:
    """The file is checked as a whole: a flag does not hide a broken key."""
    with pytest.raises(config.ConfigError, match=r"t\.toml: interval"):
        SPEC.load(_write(tmp_path, 'interval = "soon"\n'), {"interval": "1s"})


def test_value_flags_take_words_that_start_with_a_dash() -> None:
    """``--interval -1s`` reaches the reader (a clear message) instead of argparse's 'expected one argument'."""
    assert SPEC.normalize(["--interval", "-1s", "--verbose", "x"]) == ["--interval=-1s", "--verbose", "x"]
    assert SPEC.normalize(["--count", "-1"]) == ["--count=-1"]
    args = SPEC.parser().parse_args(SPEC.normalize(["--interval", "-1s"]))
    assert args.interval == "-1s"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("127.0.0.1:4242", "127.0.0.1", 4242), ("[::1]:80", "::1", 80), ("localhost:0", "localhost", 0),
     ("0.0.0.0:65535", "0.0.0.0", 65535), ("[::]:4243", "::", 4243)],  # noqa: S104 - parsed, never bound
)
def test_listen_addresses(text: str, host: str, port: int) -> None:
    """HOST:PORT or [IPV6]:PORT, port 0..65535 (0: any free port)."""
    parsed = address.parse_listen(text)
    assert (parsed.host, parsed.port) == (host, port)
    assert str(parsed) == text


@pytest.mark.parametrize("text", ["nowhere", ":80", "::1:80", "host:", "host:-1", "host:65536", f"h:{HUGE}",
                                  "a b:1", "http://h:1"])
def test_bad_listen_addresses(text: str) -> None:
    """Everything else is refused with a reason."""
    with pytest.raises(ValueError, match=r"HOST:PORT|outside 0\.\.65535"):
        address.parse_listen(text)


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("tcp://127.0.0.1:4241", "tcp://127.0.0.1:4241"),
        ("http://localhost:4241", "tcp://localhost:4241"),
        ("http://localhost:4241/", "tcp://localhost:4241"),
        ("localhost:4241", "tcp://localhost:4241"),
        ("[::1]:4241", "tcp://[::1]:4241"),
        ("ipc:///run/rezolus.sock", "ipc:///run/rezolus.sock"),
        ("inproc://x", "inproc://x"),
    ],
)
def test_agent_addresses(text: str, endpoint: str) -> None:
    """http://, tcp:// and HOST:PORT all name the agent's bus at that host and port."""
    assert address.parse_source(text) == endpoint


@pytest.mark.parametrize("text", ["garbage", "http://x", "tcp://h", "udp://h:1", "h:70000", "http://h:1/metrics"])
def test_bad_agent_addresses(text: str) -> None:
    """Anything else is refused."""
    with pytest.raises(ValueError, match=r"endpoint|outside"):
        address.parse_source(text)


def test_overflowing_numbers_are_value_errors() -> None:
    """400 digits never reach float(): a ValueError, not an OverflowError."""
    for parse in (config.parse_duration, config.parse_size):
        with pytest.raises(ValueError, match="too large"):
            parse(HUGE + ("s" if parse is config.parse_duration else "GiB"))
    assert config.parse_duration("292y".replace("y", "d")) == 292 * 86_400 * 10**9
