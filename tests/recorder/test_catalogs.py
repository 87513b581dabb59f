import pytest

from rezolus_core.frame import DecodeError, encode_catalog
from rezolus_recorder import journal
from rezolus_recorder.catalogs import CatalogJournal, CatalogReplay, apply_delta, encode_delta
from support import synth


def test_growing_catalog_is_journaled_as_deltas_and_replays_exactly():
    """A new instance is written in full, its growth as deltas; replay rebuilds each version."""
    small, big = synth.catalog("a"), synth.catalog("a", extra_cgroups=2)
    other = synth.catalog("b")
    book, replay = CatalogJournal(), CatalogReplay()
    seen = []
    for catalog in (small, small, big, small, other):
        records = book.records(catalog)
        seen.append([kind for kind, _ in records])
        for kind, payload in records:
            rebuilt = replay.apply(kind, payload)
            assert rebuilt == catalog
    assert seen == [[journal.KIND_CATALOG], [], [journal.KIND_SERIES], [], [journal.KIND_CATALOG]]
    assert replay.catalogs == {"a": big, "b": other}
    grown = synth.catalog("b", extra_cgroups=1)
    delta = book.records(grown)[0][1]
    assert len(delta) < len(encode_catalog(grown)) / 4


def test_delta_that_does_not_continue_its_catalog_is_refused():
    """A delta for an unknown instance or starting past the catalog's end is a DecodeError."""
    small, big = synth.catalog("a"), synth.catalog("a", extra_cgroups=2)
    with pytest.raises(DecodeError, match="no catalog"):
        apply_delta({}, encode_delta(big, small.version))
    with pytest.raises(DecodeError, match="starts at"):
        apply_delta({"a": small}, encode_delta(big, small.version + 1))
    with pytest.raises(DecodeError, match="not msgpack"):
        apply_delta({"a": small}, b"\xc1")


def test_overlapping_delta_adds_only_the_new_series():
    """A delta that repeats known series extends the catalog by the rest only."""
    small, big = synth.catalog("a"), synth.catalog("a", extra_cgroups=2)
    assert apply_delta({"a": small}, encode_delta(big, small.version - 2)) == big
