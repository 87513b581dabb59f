"""Strict configuration reading: every problem names file, key and reason."""

from __future__ import annotations

import pytest

from rezolus_core import config


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("500ms", 500_000_000),
        ("1s", 10**9),
        ("15m", 900 * 10**9),
        ("2h", 7200 * 10**9),
        ("10us", 10_000),
        ("1.5s", 1_500_000_000),
    ],
)
def test_durations(text: str, ns: int) -> None:
    """Human durations parse to nanoseconds."""
    assert config.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "abc", "5 parsecs", "-1s", "1s2"])
def test_bad_durations(text: str) -> None:
    """Malformed durations raise ValueError with an example of the right form."""
    with pytest.raises(ValueError, match="not a duration"):
        config.parse_duration(text)


def test_format_duration_round_trips() -> None:
    """format_duration gives the shortest exact form that parses back."""
    for ns in (10**9, 900 * 10**9, 100_000_000, 1234):
        assert config.parse_duration(config.format_duration(ns)) == ns


def test_sizes() -> None:
    """Sizes accept binary and decimal units and plain numbers."""
    assert config.parse_size("512MiB") == 512 * 2**20
    assert config.parse_size("2GB") == 2 * 10**9
    assert config.parse_size("4096") == 4096


def test_unknown_key_is_named(tmp_path) -> None:
    """An unknown key is reported with the file and dotted key."""
    path = tmp_path / "x.toml"
    path.write_text('[general]\nlisten = "tcp://127.0.0.1:1"\nlisen = 3\n')
    section = config.load(path).section("general")
    section.string("listen", "")
    with pytest.raises(config.ConfigError, match=r"x\.toml: general\.lisen: unknown key"):
        section.finish()


def test_wrong_type_is_named(tmp_path) -> None:
    """A value of the wrong type names key and value."""
    path = tmp_path / "x.toml"
    path.write_text("[general]\ninterval = 5\n")
    with pytest.raises(config.ConfigError, match=r"general\.interval: expected a string, got 5"):
        config.load(path).section("general").duration("interval", "1s")


def test_invalid_toml_and_missing_file(tmp_path) -> None:
    """Broken TOML and a missing file are ConfigErrors, not tracebacks."""
    path = tmp_path / "bad.toml"
    path.write_text("[general\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(path)
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.toml")
