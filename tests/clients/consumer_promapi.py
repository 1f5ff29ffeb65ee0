"""prometheus-api-client 0.7.2 through aetos, against direct Prometheus.

Usage: consumer_promapi.py ENV_JSON AETOS_URL

AETOS_URL is aetos' Prometheus root (``http://H:P/prometheus``), the URL a
user of this generic client configures, with the Keystone token as an
``X-Auth-Token`` header.  Privileged (the ``aetos`` service user) every
call must answer what the same call answers on direct Prometheus; as a
reader of project demo only demo's series, names, values and metadata.

Times are fixed (the differential data set's window, or one instant a few
seconds ago) so both sides evaluate the same thing.
"""

import datetime
import sys
import time

import consumers_common as cc

from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

e = cc.env()
aetos_url = sys.argv[2]
demo, other = e["projects"]["demo"], e["projects"]["other"]
diff = e["diff"]

admin = PrometheusConnect(aetos_url, headers={"X-Auth-Token": cc.keystone_token(e, "aetos")})
reader = PrometheusConnect(aetos_url, headers={"X-Auth-Token": cc.keystone_token(e, "demo-reader")})
prom = PrometheusConnect(e["prometheus_url"])
for c in (admin, reader, prom):
    c._session.trust_env = False  # loopback only: never through a proxy

now = str(int(time.time()) - 2)
d_start = datetime.datetime.fromtimestamp(diff["start"], tz=datetime.timezone.utc)
d_end = datetime.datetime.fromtimestamp(diff["end"], tz=datetime.timezone.utc)
d_mid = datetime.datetime.fromtimestamp(diff["end"] - 600, tz=datetime.timezone.utc)


def by_labels(result):
    return sorted(result, key=lambda s: sorted(s["metric"].items()))


def projects(result):
    return {s["metric"].get("project") for s in result}


def metadata_key(entries):
    return sorted((m["metric_name"], m["type"], m["help"], m["unit"]) for m in entries)


def metadata_entries(entries):
    return sorted(entries, key=lambda m: sorted((k, str(v)) for k, v in m.items())) if isinstance(entries, list) else entries


def call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except PrometheusApiClientException as err:
        return f"error: {err}"


# ------------------------------------------------------------ privileged
for q in ["ceilometer_cpu", "count by (fqdn) (node_cpu_seconds_total)", "up", "1+1"]:
    cc.check(
        f"custom_query {q}",
        call(admin.custom_query, q, params={"time": now}),
        call(prom.custom_query, q, params={"time": now}),
    )
q = 'rate(diff_http_requests_total{project="diff-a"}[5m])'
cc.check(
    "custom_query_range over the differential window",
    by_labels(admin.custom_query_range(q, d_start, d_end, "60s")),
    by_labels(prom.custom_query_range(q, d_start, d_end, "60s")),
)
cc.check(
    "get_metric_range_data in two chunks",
    by_labels(admin.get_metric_range_data(
        "diff_memory_used_bytes", {"project": "diff-b"}, d_mid, d_end, datetime.timedelta(seconds=300))),
    by_labels(prom.get_metric_range_data(
        "diff_memory_used_bytes", {"project": "diff-b"}, d_mid, d_end, datetime.timedelta(seconds=300))),
)
cc.check("all_metrics", admin.all_metrics(), prom.all_metrics())
cc.check("get_label_values project", admin.get_label_values("project"), prom.get_label_values("project"))
cc.check("get_metric_metadata (all)", metadata_key(admin.get_metric_metadata(None)), metadata_key(prom.get_metric_metadata(None)))
cc.check(
    "get_metric_metadata ceilometer_cpu",
    metadata_key(admin.get_metric_metadata("ceilometer_cpu")),
    metadata_key(prom.get_metric_metadata("ceilometer_cpu")),
)
# targets/metadata: routed by aetos since branch `filter` (404 before).
cc.check(
    "get_target_metadata job=exporter, one metric",
    call(admin.get_target_metadata, {"job": "exporter"}, "node_memory_MemTotal_bytes"),
    call(prom.get_target_metadata, {"job": "exporter"}, "node_memory_MemTotal_bytes"),
)
cc.check(
    "get_target_metadata job=exporter",
    metadata_entries(call(admin.get_target_metadata, {"job": "exporter"})),
    metadata_entries(call(prom.get_target_metadata, {"job": "exporter"})),
)

# ------------------------------------------------------------ reader of demo
r = reader.custom_query("ceilometer_cpu", params={"time": now})
cc.check("reader custom_query ceilometer_cpu: only demo", projects(r), {demo})
cc.check(
    "reader custom_query ceilometer_cpu: demo's series as on Prometheus",
    by_labels(r),
    by_labels(prom.custom_query(f'ceilometer_cpu{{project="{demo}"}}', params={"time": now})),
)
recent = datetime.datetime.fromtimestamp(int(now) - 30, tz=datetime.timezone.utc)
at_now = datetime.datetime.fromtimestamp(int(now), tz=datetime.timezone.utc)
r = reader.custom_query_range('{__name__=~"ceilometer_.*"}', recent, at_now, "10s")
cc.check("reader custom_query_range: only demo", projects(r), {demo})
r = reader.get_metric_range_data("ceilometer_memory_usage", None, recent, at_now)
cc.check("reader get_metric_range_data: only demo", projects(r), {demo})
names = set(reader.all_metrics())
demo_names = set(prom.get_label_values("__name__", params={"match[]": f'{{project="{demo}"}}'}))
cc.check("reader all_metrics: the names of demo's series", names, demo_names)
cc.check("reader get_label_values project", reader.get_label_values("project"), [demo])
meta = reader.get_metric_metadata(None)
cc.check_true(
    "reader get_metric_metadata: only metrics demo has",
    meta and {m["metric_name"] for m in meta} <= demo_names,
    sorted({m["metric_name"] for m in meta}),
)
# metadata?limit=N for a reader: fixed on branch `filter` (before, the
# limit applied before the project filter and often left `{}`).
meta = reader.get_metric_metadata(None, limit=2)
cc.check_true(
    "reader get_metric_metadata limit=2: 1 or 2 of demo's metrics",
    1 <= len({m["metric_name"] for m in meta}) <= 2 and {m["metric_name"] for m in meta} <= demo_names,
    meta,
)
# targets/metadata for a reader (branch `filter`): only entries of metrics
# its project has, or 403.
tm = call(reader.get_target_metadata, {"job": "exporter"})
cc.check_true(
    "reader get_target_metadata: 403 or only demo's metrics",
    (isinstance(tm, str) and "403" in tm)
    or (isinstance(tm, list) and tm and {m.get("metric") for m in tm} <= demo_names),
    tm,
)

cc.finish()
