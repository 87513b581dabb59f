"""Snapshot request validation: times, ranges and names, good and bad."""

from __future__ import annotations

import pytest

from rezolus_hindsight.request import (
    Range,
    RequestError,
    check_name,
    default_name,
    format_ns,
    parse_time,
    resolve,
)

S = 1_000_000_000
OLD, NEW = 1_795_000_000 * S, 1_795_000_900 * S


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1795000000", 1_795_000_000 * S),
        ("1795000000.25", 1_795_000_000 * S + 250_000_000),
        ("1795000000.000000001", 1_795_000_000 * S + 1),
        ("2026-11-18T19:46:40Z", 1_795_031_200 * S),
        ("2026-11-18T20:46:40.5+01:00", 1_795_031_200 * S + 500_000_000),
        ("2026-11-18 19:46:40.000000007z", 1_795_031_200 * S + 7),
    ],
)
def test_times_parse_to_the_nanosecond(text: str, ns: int) -> None:
    """Unix seconds and RFC 3339 (with zone) are read exactly."""
    assert parse_time("start", text) == ns


@pytest.mark.parametrize(
    "text",
    ["abc", "", "-5", "1e9", "nan", "inf", "2026-11-18T19:46:40", "2026-13-01T00:00:00Z",
     "99999999999999999999", "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z", "0x10"],
)
def test_bad_times_are_refused_with_a_message(text: str) -> None:
    """Malformed, zoneless or unrepresentable times are a 400 naming the parameter."""
    with pytest.raises(RequestError, match="start=") as caught:
        parse_time("start", text)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("params", "want"),
    [
        ({}, Range(OLD, NEW)),
        ({"last": "5m"}, Range(NEW - 300 * S, NEW)),
        ({"last": "100d"}, Range(OLD, NEW)),
        ({"start": str(OLD // S + 60)}, Range(OLD + 60 * S, NEW)),
        ({"end": str(OLD // S + 60)}, Range(OLD, OLD + 60 * S)),
        ({"start": "1", "end": str(NEW // S + 999)}, Range(OLD, NEW)),
    ],
)
def test_ranges_are_clipped_to_the_buffer(params: dict[str, str], want: Range) -> None:
    """``last`` counts back from the newest frame; ranges are clipped to what is retained."""
    assert resolve(params, (OLD, NEW)) == want


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"last": "abc"}, 400, "not a duration"),
        ({"last": "0s"}, 400, "longer than zero"),
        ({"last": "99999999999999999999999d"}, 400, "too large"),
        ({"last": "5m", "start": "1"}, 400, "not both"),
        ({"start": str(NEW // S), "end": str(OLD // S)}, 400, "after end"),
        ({"start": str(NEW // S + 10)}, 400, "outside the buffer"),
        ({"end": str(OLD // S - 10)}, 400, "outside the buffer"),
        ({"start": "1", "end": "2"}, 400, "outside the buffer"),
        ({"colour": "red"}, 400, "unknown parameter"),
    ],
)
def test_bad_ranges_are_400_with_a_message(params: dict[str, str], status: int, fragment: str) -> None:
    """Every bad range is refused with its own message."""
    with pytest.raises(RequestError, match=fragment) as caught:
        resolve(params, (OLD, NEW))
    assert caught.value.status == status


def test_an_empty_buffer_is_a_conflict() -> None:
    """Asking an empty buffer is 409, after the request itself was checked."""
    with pytest.raises(RequestError, match="no frames") as caught:
        resolve({"last": "5m"}, None)
    assert caught.value.status == 409
    with pytest.raises(RequestError) as caught:
        resolve({"last": "abc"}, None)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "name",
    ["../../etc/x", "/etc/passwd", "a/b", ".hidden", "..", "x/../../y", "a\\b", "", "a b",
     "é", "x" * 200, "nul\0byte", "~root"],
)
def test_unsafe_names_are_refused(name: str) -> None:
    """Paths, hidden names and odd characters are never accepted as a snapshot name."""
    with pytest.raises(RequestError, match="plain file name") as caught:
        check_name(name)
    assert caught.value.status == 400


def test_names_get_a_parquet_suffix_and_defaults_are_unique() -> None:
    """A plain name gets ``.parquet``; default names say the range and never repeat."""
    assert check_name("incident-42") == "incident-42.parquet"
    assert check_name("a.parquet") == "a.parquet"
    names = {default_name(Range(OLD, NEW)) for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith("hindsight-20261118T") and n.endswith(".parquet") for n in names)
    assert format_ns(OLD + 5) == "2026-11-18T11:06:40.000000005Z"
