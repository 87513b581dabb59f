"""``rezolus tap``: print the agent's frames, as a compact table or JSON lines.

The table shows, per frame, each counter's rate over the frame interval, each
gauge's value and each histogram's p50/p99 over the interval (series that did
not move are left out).  ``--json`` prints the frame contract as one object per
frame and line, with cumulative values exactly as published.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rezolus_core import histogram
from rezolus_core.bus import CLIENT_OPTIONS, DEFAULT_ENDPOINT, BusError, ZmqSubscriber, client_keys
from rezolus_core.frame import HistogramValue, MetricType, SeriesSpec, iter_values
from rezolus_core.lifecycle import EXIT_FAILURE, fail, guard_config
from rezolus_core.shell import Option, Spec

if TYPE_CHECKING:
    from rezolus_core.curve import ClientKeys
    from rezolus_core.tracker import Delivery


def series_label(spec: SeriesSpec) -> str:
    """``name{k="v",...}`` for display."""
    if not spec.labels:
        return spec.name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(spec.labels.items()))
    return f"{spec.name}{{{inner}}}"


def frame_json(delivery: Delivery) -> dict[str, Any]:
    """The ``--json`` object for one frame."""
    frame = delivery.frame
    series: list[dict[str, Any]] = []
    for spec, value in iter_values(frame, delivery.catalog):
        item: dict[str, Any] = {
            "name": spec.name,
            "type": spec.type.value,
            "labels": dict(spec.labels),
            "unit": spec.unit,
        }
        if isinstance(value, HistogramValue):
            item["buckets"] = {str(i): c for i, c in zip(value.indices.tolist(), value.counts.tolist(), strict=True)}
        else:
            item["value"] = value
        series.append(item)
    return {
        "instance": frame.instance,
        "seq": frame.seq,
        "timestamp": frame.timestamp_ns,
        "interval": frame.interval_ns,
        "series": series,
    }


class TableView:
    """Keeps the previous frame to show per-interval rates and percentiles."""

    def __init__(self) -> None:
        self._previous: dict[int, int | HistogramValue] = {}
        self._previous_ts: int | None = None

    def render(self, delivery: Delivery) -> list[str]:
        """Lines for one frame."""
        frame = delivery.frame
        if delivery.restarted:
            self._previous, self._previous_ts = {}, None
        elapsed = None if self._previous_ts is None else (frame.timestamp_ns - self._previous_ts) / 1e9
        lines = [(f"--- {frame.host} seq={frame.seq} instance={frame.instance[:8]} missed={delivery.missed_before}")]
        current: dict[int, int | HistogramValue] = {}
        for spec, value in iter_values(frame, delivery.catalog):
            current[spec.id] = value
            text = self._cell(spec, value, self._previous.get(spec.id), elapsed)
            if text is not None:
                lines.append(f"  {series_label(spec):<60} {text}")
        self._previous, self._previous_ts = current, frame.timestamp_ns
        return lines

    @staticmethod
    def _cell(
        spec: SeriesSpec,
        value: int | HistogramValue,
        before: int | HistogramValue | None,
        elapsed: float | None,
    ) -> str | None:
        if spec.type is MetricType.GAUGE:
            return f"{value} {spec.unit}"
        if before is None or not elapsed:
            return None
        if isinstance(value, HistogramValue) and isinstance(before, HistogramValue):
            now = histogram.to_dense(value.indices, value.counts)
            diff, _ = histogram.delta(now, histogram.to_dense(before.indices, before.counts))
            p50, p99 = histogram.percentiles(diff, (50, 99))
            return None if p50 is None else f"p50={p50} p99={p99} {spec.unit}"
        if isinstance(value, int) and isinstance(before, int) and value != before:
            return f"{(value - before) / elapsed:.1f} {spec.unit}/s"
        return None


PROG = "rezolus-tap"
SPEC = Spec(
    prog=PROG,
    description=__doc__ or "",
    options=(
        Option("source", "source", DEFAULT_ENDPOINT, "the agent's endpoint", flag="--source", metavar="ENDPOINT"),
        Option("count", "integer", 0, "stop after N frames (0: forever)", flag="--count", minimum=0, metavar="N"),
        Option("json", "boolean", default=False, help="one JSON object per frame", flag="--json"),
        Option("timeout", "number", 10.0, "give up after S seconds with no frame", flag="--timeout",
               minimum=0.001, metavar="S"),
        *CLIENT_OPTIONS,
    ),
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rezolus tap``: one line and exit 2 for bad flags, 1 when no frame comes."""
    namespace = SPEC.parser(config_flag=False).parse_args(SPEC.normalize(sys.argv[1:] if argv is None else argv))

    def build() -> int:
        settings = SPEC.load(None, SPEC.flags(namespace))
        keys = client_keys(settings)
        return _tap(settings["source"], settings["count"], settings["timeout"], as_json=settings["json"], keys=keys)

    return guard_config(PROG, build)


def _tap(source: str, count: int, timeout: float, *, as_json: bool, keys: ClientKeys | None = None) -> int:
    try:
        subscriber = ZmqSubscriber(source, keys=keys)
    except BusError as exc:
        return fail(PROG, str(exc), EXIT_FAILURE)
    view = TableView()
    shown = 0
    try:
        while count <= 0 or shown < count:
            deliveries = subscriber.poll(timeout)
            if not deliveries:
                return fail(PROG, f"no frame from {source} within {timeout:g}s", EXIT_FAILURE)
            for delivery in deliveries:
                if as_json:
                    sys.stdout.write(json.dumps(frame_json(delivery), separators=(",", ":")) + "\n")
                else:
                    sys.stdout.write("\n".join(view.render(delivery)) + "\n")
                sys.stdout.flush()
                shown += 1
                if 0 < count <= shown:
                    break
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0
    finally:
        subscriber.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
