"""Fixed differential data set of the local stack, pushed by Prometheus remote write.

Why: differential tests compare a query made through aetos as project
``diff-a`` against the main Prometheus (which holds every project's series
plus unlabelled ones) with the same query made directly against the
"only-A" Prometheus (which holds exactly project A's series).  Both must
therefore contain the *same* samples for project A, at fixed, known
timestamps, so results are comparable and reproducible.

The data is deterministic: a pure function of ``--end`` (series values come
from a seeded PRNG), 1 hour of samples every 15 s ending at ``--end``.  It
is sent as a snappy-compressed protobuf ``prometheus.WriteRequest``; the
protobuf is encoded by hand (the schema is four tiny messages) so that no
generated code or protobuf runtime is needed.

Usage (run with the stack's virtualenv python, which has ``cramjam``):
  diff_data.py push  --end E --main URL --only-a URL   push, then verify
  diff_data.py check --end E --main URL --only-a URL   verify only (exit 3 if absent)
  diff_data.py metrics                                 print the metric names (JSON)
"""

import argparse
import json
import math
import random
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import cramjam

#: Seconds between two samples of a series.
STEP = 15
#: Length of the data set in seconds (samples at end-SPAN, ..., end).
SPAN = 3600
#: Label carrying the project; values of the two differential projects.
PROJECT_LABEL = "project"
PROJECT_A = "diff-a"
PROJECT_B = "diff-b"
#: Histogram bucket bounds, formatted as Go clients do.
BUCKETS = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
#: Exit status of ``check`` when the data set is absent or incomplete.
EXIT_ABSENT = 3


# ---------------------------------------------------------------- protobuf
def _varint(value):
    """Encode a non-negative integer as a protobuf base-128 varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, wire_type):
    """Encode a field key (field number and wire type)."""
    return _varint((number << 3) | wire_type)


def _length_delimited(number, payload):
    """Encode a length-delimited field (strings, bytes, sub-messages)."""
    return _field(number, 2) + _varint(len(payload)) + payload


def encode_write_request(series):
    """Encode ``[(labels_dict, [(ts_ms, value), ...]), ...]`` as a WriteRequest.

    Schema (prometheus/prompb): WriteRequest{repeated TimeSeries timeseries=1},
    TimeSeries{repeated Label labels=1; repeated Sample samples=2},
    Label{string name=1; string value=2}, Sample{double value=1; int64 timestamp=2}.
    Labels are sent sorted by name, as Prometheus requires.
    """
    out = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name in sorted(labels):
            label = _length_delimited(1, name.encode()) + _length_delimited(2, labels[name].encode())
            ts += _length_delimited(1, label)
        for ts_ms, value in samples:
            sample = _field(1, 1) + struct.pack("<d", value) + _field(2, 0) + _varint(ts_ms)
            ts += _length_delimited(2, sample)
        out += _length_delimited(1, bytes(ts))
    return bytes(out)


# ---------------------------------------------------------------- data set
def _counter(rng, times, rate, reset_at=None):
    """Monotonic counter samples, optionally reset to ~0 at index ``reset_at``."""
    value = rng.uniform(0, 100)
    out = []
    for i, _ in enumerate(times):
        if reset_at is not None and i == reset_at:
            value = 0.0
        value += rng.uniform(0.5, 1.5) * rate * STEP
        out.append(round(value, 3))
    return out


def _gauge(rng, times, base, amplitude):
    """Gauge samples: a sine wave with noise around ``base``."""
    phase = rng.uniform(0, 2 * math.pi)
    return [
        round(base + amplitude * math.sin(phase + i / 20.0) + rng.uniform(-1, 1) * amplitude / 10, 4)
        for i, _ in enumerate(times)
    ]


def _histogram(rng, name, labels, times):
    """Classic histogram series (_bucket per le, _sum, _count) with consistent counts."""
    # Most observations are fast, a few are slow, very few are beyond 2.5 s.
    shape = [6, 5, 4, 2, 1, 0.5, 0.05]
    weights = [s * rng.uniform(0.5, 1.5) for s in shape]
    cumulative = [0.0] * len(BUCKETS)
    total_sum = 0.0
    per_bucket = [[] for _ in BUCKETS]
    sums, counts = [], []
    for _ in times:
        new = [rng.randint(0, max(1, round(w * 2))) for w in weights]
        running = 0
        for j, n in enumerate(new):
            running += n
            cumulative[j] += running
            per_bucket[j].append(cumulative[j])
        # Each observation in bucket j contributes roughly its upper bound.
        total_sum += sum(
            n * (float(b) if b != "+Inf" else 5.0) * 0.7 for n, b in zip(new, BUCKETS, strict=True)
        )
        sums.append(round(total_sum, 3))
        counts.append(cumulative[-1])
    out = []
    for le, values in zip(BUCKETS, per_bucket, strict=True):
        out.append(({"__name__": name + "_bucket", **labels, "le": le}, values))
    out.append(({"__name__": name + "_sum", **labels}, sums))
    out.append(({"__name__": name + "_count", **labels}, counts))
    return out


def _project_series(rng, project, times):
    """Series of one differential project (``project`` label set)."""
    p = {PROJECT_LABEL: project}
    out = []
    for instance in ("web-1", "web-2"):
        for method in ("GET", "POST"):
            for code in ("200", "500"):
                reset = len(times) // 2 if (instance, method, code) == ("web-2", "GET", "500") else None
                rate = 2.0 if code == "200" else 0.1
                labels = {
                    "__name__": "diff_http_requests_total",
                    **p,
                    "instance": instance,
                    "method": method,
                    "code": code,
                }
                out.append((labels, _counter(rng, times, rate, reset)))
    for host in ("h1", "h2", "h3"):
        out.append(({"__name__": "diff_cpu_usage_ratio", **p, "host": host}, _gauge(rng, times, 0.5, 0.3)))
        out.append(
            (
                {"__name__": "diff_memory_used_bytes", **p, "host": host},
                [round(v) for v in _gauge(rng, times, 4e9, 1e9)],
            )
        )
    for handler in ("/api", "/login"):
        out.extend(_histogram(rng, "diff_request_duration_seconds", {**p, "handler": handler}, times))
    for queue in ("high", "low"):
        values = _gauge(rng, times, 20, 15)
        samples = list(zip(times, values, strict=True))
        if queue == "low":
            # A 10-minute hole in the middle: tests absent/staleness handling.
            samples = samples[:80] + samples[120:]
        out.append(({"__name__": "diff_queue_length", **p, "queue": queue}, samples))
    out.append(({"__name__": "diff_build_info", **p, "version": "1.2.3"}, [1.0] * len(times)))
    only = "diff_a_only_total" if project == PROJECT_A else "diff_b_only_total"
    out.append(({"__name__": only, **p}, _counter(rng, times, 0.5)))
    return out


def _unlabelled_series(rng, times):
    """Series without a project label (only in main: never visible to a project)."""
    out = [
        (
            {"__name__": "diff_http_requests_total", "instance": "web-1", "method": "GET", "code": "200"},
            _counter(rng, times, 3.0),
        ),
        # A label *value* naming project A, but no project label: must stay invisible to A.
        (
            {
                "__name__": "diff_http_requests_total",
                "instance": "web-9",
                "method": "GET",
                "code": "200",
                "owner": PROJECT_A,
            },
            _counter(rng, times, 1.0),
        ),
        ({"__name__": "diff_cpu_usage_ratio", "host": "h1"}, _gauge(rng, times, 0.4, 0.2)),
        ({"__name__": "diff_cluster_temperature_celsius", "room": "r1"}, _gauge(rng, times, 22, 3)),
    ]
    out.extend(_histogram(rng, "diff_request_duration_seconds", {"handler": "/health"}, times))
    return out


def build(end):
    """Return ``(series_a, series_all)``; each item is ``(labels, [(ts_ms, value)])``."""
    times = list(range(end - SPAN, end + 1, STEP))
    rng = random.Random(20240229)

    def with_times(series):
        out = []
        for labels, values in series:
            if values and isinstance(values[0], tuple):
                samples = values
            else:
                samples = list(zip(times, values, strict=True))
            out.append((labels, [(t * 1000, float(v)) for t, v in samples]))
        return out

    series_a = with_times(_project_series(rng, PROJECT_A, times))
    series_b = with_times(_project_series(rng, PROJECT_B, times))
    series_none = with_times(_unlabelled_series(rng, times))
    return series_a, series_a + series_b + series_none


def metric_names():
    """Sorted metric names of the data set (for tests that iterate over them)."""
    _, all_series = build(SPAN)
    return sorted({labels["__name__"] for labels, _ in all_series})


# ---------------------------------------------------------------- HTTP
def _push(url, series, batch=40):
    """Remote-write ``series`` to ``url`` in batches; raise on any non-2xx answer."""
    for i in range(0, len(series), batch):
        body = bytes(cramjam.snappy.compress_raw(encode_write_request(series[i : i + batch])))
        req = urllib.request.Request(
            url.rstrip("/") + "/api/v1/write",
            data=body,
            method="POST",
            headers={
                "Content-Encoding": "snappy",
                "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": "0.1.0",
                "User-Agent": "aetos-stack-diff-data",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace").strip()
            raise SystemExit(f"remote write to {url} failed: HTTP {err.code}: {detail}") from None


def _scalar_query(url, query, at):
    """Run an instant query and return the single value as float, or None if empty."""
    qs = urllib.parse.urlencode({"query": query, "time": str(at)})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query?{qs}", timeout=10) as resp:
            doc = json.load(resp)
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace").strip()
        raise SystemExit(f"query {query!r} on {url} failed: HTTP {err.code}: {detail}") from None
    except (OSError, ValueError) as err:
        raise SystemExit(f"query {query!r} on {url} failed: {err}") from None
    result = doc.get("data", {}).get("result", [])
    if not result:
        return None
    return float(result[0]["value"][1])


def _series_visible_at(series, end):
    """Count the series an instant query at ``end`` sees (a sample in the 5 m lookback)."""
    lookback_ms = 300 * 1000
    return sum(1 for _, s in series if s and s[-1][0] > end * 1000 - lookback_ms)


def verify(url, series, end):
    """Return a list of problems (empty when ``url`` holds exactly ``series``).

    Checks the number of series at ``end``, and per metric name the number
    of samples and the sum of their values over the whole hour, so that
    missing, extra or different samples (e.g. from an older generator or a
    deleted series) are all detected.
    """
    want_count = _series_visible_at(series, end)
    problems = []
    got_count = _scalar_query(url, 'count({__name__=~"diff_.+"})', end)
    if got_count != want_count:
        problems.append(f"{url}: {got_count} series at {end}, want {want_count}")
    window = f"[{SPAN + 1}s]"
    for name in sorted({labels["__name__"] for labels, _ in series}):
        samples = [s for labels, ss in series if labels["__name__"] == name for s in ss]
        # count_over_time drops the metric name, so check one metric at a time.
        got_n = _scalar_query(url, f"sum(count_over_time({name}{window}))", end)
        if got_n != len(samples):
            problems.append(f"{url}: {name} has {got_n} samples, want {len(samples)}")
            continue
        want_sum = math.fsum(v for _, v in samples)
        got_sum = _scalar_query(url, f"sum(sum_over_time({name}{window}))", end)
        if got_sum is None or not math.isclose(got_sum, want_sum, rel_tol=1e-9, abs_tol=1e-6):
            problems.append(f"{url}: {name} sums to {got_sum}, want {want_sum}")
    return problems


def main(argv):
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["push", "check", "metrics"])
    parser.add_argument("--end", type=int, help="unix time of the last sample")
    parser.add_argument("--main", help="URL of the main Prometheus")
    parser.add_argument("--only-a", help="URL of the only-A Prometheus")
    args = parser.parse_args(argv)
    if args.command == "metrics":
        print(json.dumps(metric_names()))
        return 0
    if args.end is None or not args.main or not args.only_a:
        parser.error("--end, --main and --only-a are required")
    series_a, series_all = build(args.end)
    targets = [(args.main, series_all), (args.only_a, series_a)]
    if args.command == "push":
        for url, series in targets:
            _push(url, series)
        # Remote-written samples are queryable at once, but allow a short settle.
        deadline = time.monotonic() + 10
        while True:
            problems = [p for url, s in targets for p in verify(url, s, args.end)]
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    else:
        problems = [p for url, s in targets for p in verify(url, s, args.end)]
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_ABSENT
    print(f"diff data present: {len(series_all)} series in main, {len(series_a)} in only-A")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
