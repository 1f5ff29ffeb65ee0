"""Synthetic metrics exporter of the local stack.

Why: tests need live, scraped series with *exact* labels that real
exporters would produce (sg-core's ``ceilometer_*`` series carrying real
Keystone project ids, node_exporter's ``node_*`` series keyed by ``fqdn``,
and a few series built to catch tenancy bugs), without running OpenStack.

Every second it rewrites ``<dir>/metrics`` atomically (write a temporary
file, then rename) and serves that directory with the standard library's
``http.server`` on 127.0.0.1.  Counters grow with wall-clock time since a
base time kept in ``<dir>/t0``, so they keep increasing across restarts.
Project and user ids are read from ``<dir>/projects.json`` (written by
tools/stack.sh after seeding Keystone) on every tick.

Usage: exporter.py --dir DIR --port PORT
"""

import argparse
import functools
import http.server
import json
import math
import os
import sys
import threading
import time
import uuid

#: Namespace for deterministic resource UUIDs (stable across restarts).
_NS = uuid.UUID("6f1d8a52-6a8e-4b57-9b1f-2f0d9c4a7e10")

#: Hypervisors exposed by the fake node_exporter.
HOSTS = ("compute-0.localdomain", "compute-1.localdomain")


def resource_id(name):
    """Deterministic instance UUID for a fake VM name."""
    return str(uuid.uuid5(_NS, name))


def _escape(value):
    """Escape a label value for the text exposition format."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name, labels, value):
    """One exposition line with labels sorted by name."""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}} {value}\n"


def _vms(ids):
    """Fake VMs: (project key, project id, user id, vm name, CPU share, memory MB)."""
    demo, other = ids["projects"]["demo"], ids["projects"]["other"]
    demo_user, other_user = ids["users"]["demo"], ids["users"]["other"]
    return [
        ("demo", demo, demo_user, "demo-vm-1", 0.25, 512),
        ("demo", demo, demo_user, "demo-vm-2", 0.60, 1024),
        ("other", other, other_user, "other-vm-1", 0.40, 2048),
    ]


def render(ids, elapsed, now):
    """Return the exposition text for ``elapsed`` seconds since the base time."""
    out = []
    out.append("# HELP ceilometer_cpu CPU time used by the instance (ns)\n# TYPE ceilometer_cpu counter\n")
    for key, project, user, name, share, _ in _vms(ids):
        rid = resource_id(name)
        labels = {
            "project": project,
            "project_name": key,
            "user": user,
            "resource": rid,
            "resource_name": name,
            "vm_instance": rid,
            "counter": "cpu",
            "type": "cumulative",
            "unit": "ns",
            "publisher": "localhost",
            "server_group": f"sg-{key}",
        }
        out.append(_line("ceilometer_cpu", labels, int(elapsed * share * 1e9)))
    out.append(
        "# HELP ceilometer_memory_usage Memory used by the instance (MB)\n"
        "# TYPE ceilometer_memory_usage gauge\n"
    )
    for key, project, user, name, _, mem in _vms(ids):
        rid = resource_id(name)
        labels = {
            "project": project,
            "project_name": key,
            "user": user,
            "resource": rid,
            "resource_name": name,
            "vm_instance": rid,
            "counter": "memory.usage",
            "type": "gauge",
            "unit": "MB",
            "publisher": "localhost",
            "server_group": f"sg-{key}",
        }
        value = round(mem * (0.5 + 0.2 * math.sin(now / 60.0 + len(name))), 1)
        out.append(_line("ceilometer_memory_usage", labels, value))

    out.append(
        "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
        "# TYPE node_cpu_seconds_total counter\n"
    )
    for h, host in enumerate(HOSTS):
        for cpu in ("0", "1"):
            for mode, share in (("idle", 0.7 - 0.1 * h), ("user", 0.3 + 0.1 * h)):
                value = round(1000.0 + elapsed * share, 2)
                out.append(_line("node_cpu_seconds_total", {"fqdn": host, "cpu": cpu, "mode": mode}, value))
    out.append("# TYPE node_memory_MemTotal_bytes gauge\n")
    for host in HOSTS:
        out.append(_line("node_memory_MemTotal_bytes", {"fqdn": host}, 16 * 1024**3))
    out.append("# TYPE node_memory_MemAvailable_bytes gauge\n")
    for h, host in enumerate(HOSTS):
        value = int((8 + 2 * math.sin(now / 90.0 + h)) * 1024**3)
        out.append(_line("node_memory_MemAvailable_bytes", {"fqdn": host}, value))

    demo, other = ids["projects"]["demo"], ids["projects"]["other"]
    out.append("# TYPE demo_only_metric gauge\n")
    out.append(_line("demo_only_metric", {"project": demo, "kind": "demo"}, 42))
    out.append("# TYPE other_only_metric gauge\n")
    out.append(_line("other_only_metric", {"project": other, "kind": "other"}, 7))
    out.append("# TYPE unlabelled_metric counter\n")
    out.append(_line("unlabelled_metric", {"source": "node"}, int(elapsed)))
    # Label values that look like metric names: a scoping rewriter must not
    # mistake them for selectors.
    out.append("# TYPE label_lookalike_info gauge\n")
    out.append(
        _line(
            "label_lookalike_info",
            {"project": demo, "looks_like": "other_only_metric", "metric": "ceilometer_cpu"},
            1,
        )
    )
    out.append(
        _line("label_lookalike_info", {"project": other, "looks_like": "demo_only_metric", "metric": "up"}, 1)
    )
    # Fixtures for the delete tests: deleted series reappear with the next
    # scrape, so tests check a past instant, never "now".
    out.append("# TYPE cli_delete_me gauge\n")
    out.append(_line("cli_delete_me", {"project": demo}, 1))
    out.append("# TYPE aetos_test_delete_admin gauge\n")
    out.append(_line("aetos_test_delete_admin", {"project": demo}, 1))
    out.append("# TYPE aetos_test_delete_scoped gauge\n")
    out.append(_line("aetos_test_delete_scoped", {"project": demo}, 1))
    out.append(_line("aetos_test_delete_scoped", {"project": other}, 1))
    return "".join(out)


#: Path (below the served directory) of the second scrape target, job
#: ``exporter-other`` of the main Prometheus: the "other" project's own exporter.
OTHER_TARGET = os.path.join("other", "metrics")

#: HELP text that only the other project's own target gives ``ceilometer_cpu``.
OTHER_TARGET_CPU_HELP = "CPU time as only the other project's own exporter describes it"


def render_other_target(ids):
    """Exposition of the other project's own target.

    Why: metadata tests need a target specific to one project whose HELP
    text for a metric family that another project also has (``ceilometer_cpu``
    of the shared target) must never reach that other project's readers.
    It holds one series of the other project and no ``ceilometer_cpu``
    sample, so no project's series are added to existing families.
    """
    other = ids["projects"]["other"]
    return (
        f"# HELP ceilometer_cpu {OTHER_TARGET_CPU_HELP}\n# TYPE ceilometer_cpu counter\n"
        "# HELP other_target_info Series of the other project's own exporter.\n"
        "# TYPE other_target_info gauge\n" + _line("other_target_info", {"project": other}, 1)
    )


def _write_atomically(directory, name, text):
    """Write ``<directory>/<name>`` through a temporary file and a rename."""
    path = os.path.join(directory, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), ".metrics.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _base_time(directory):
    """Return the base time of the counters, created once per state directory."""
    path = os.path.join(directory, "t0")
    try:
        with open(path, encoding="ascii") as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        t0 = time.time()
        with open(path + ".tmp", "w", encoding="ascii") as f:
            f.write(f"{t0}\n")
        os.replace(path + ".tmp", path)
        return t0


def write_once(directory, t0):
    """Render and atomically replace ``<directory>/metrics``; False if ids are missing."""
    try:
        with open(os.path.join(directory, "projects.json"), encoding="utf-8") as f:
            ids = json.load(f)
    except (OSError, ValueError) as err:
        print(f"exporter: cannot read projects.json: {err}", file=sys.stderr, flush=True)
        return False
    now = time.time()
    _write_atomically(directory, "metrics", render(ids, now - t0, now))
    _write_atomically(directory, OTHER_TARGET, render_other_target(ids))
    return True


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that labels the file as text exposition and logs only errors."""

    def guess_type(self, path):
        """Serve every file as Prometheus text format 0.0.4."""
        return "text/plain; version=0.0.4; charset=utf-8"

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        """Stay quiet: three Prometheus servers scrape every second."""

    def log_error(self, format, *args):  # noqa: A002
        """Keep real errors in the log."""
        sys.stderr.write("exporter: " + (format % args) + "\n")


def main(argv):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    t0 = _base_time(args.dir)
    write_once(args.dir, t0)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", args.port), functools.partial(Handler, directory=args.dir)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"exporter: serving {args.dir} on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    while True:
        time.sleep(1.0 - (time.time() % 1.0))
        write_once(args.dir, t0)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:
        pass
