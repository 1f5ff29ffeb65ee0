"""CloudKitty 25's ``aetos`` collector against its own ``prometheus`` collector.

Usage: consumer_cloudkitty.py ENV_JSON

Configured as cloudkitty-processor is: a cloudkitty.conf read by
CloudKitty's own ``prepare_service`` ([collect] collector = aetos, a
metrics.yml, [collector_aetos] = the stack's ``aetos`` service user) and the
collector loaded by ``cloudkitty.collector.get_collector()``; it finds aetos
in the Keystone catalog.  Aetos must listen where the catalog says.  The
same metrics are then collected by CloudKitty's ``prometheus`` collector
([collector_prometheus] prometheus_url = the main Prometheus' API root
``/api/v1``, no auth).

The period is closed and fixed: the last hour of the stack's differential
data set (samples pushed at known timestamps), scoped (scope_key project)
to each of its two projects, one CloudKitty period (3600 s) long.
"""

import datetime

import consumers_common as cc

e = cc.env()
metrics_path = cc.write_conf(
    "metrics",
    """metrics:
  diff_http_requests_total:
    unit: request
    groupby: [instance, method, code]
    metadata: []
    extra_args:
      aggregation_method: max
  diff_http_requests_total@#rate:
    alt_name: http_request_rate
    unit: request/s
    groupby: [instance]
    metadata: [method]
    extra_args:
      aggregation_method: sum
      range_function: rate
  diff_memory_used_bytes:
    unit: MiB
    factor: 1/1048576
    groupby: [host]
    metadata: []
    extra_args:
      aggregation_method: avg
      query_function: round
""",
)
conf_path = cc.write_conf(
    "cloudkitty",
    f"""[DEFAULT]
transport_url = fake://

[collect]
collector = aetos
period = 3600
scope_key = project
metrics_conf = {metrics_path}

[collector_aetos]
{cc.credentials(e, "aetos")}interface = public
region_name = {e["region"]}

[collector_prometheus]
prometheus_url = {e["prometheus_url"]}/api/v1
""",
)

from oslo_config import cfg  # noqa: E402

from cloudkitty import collector  # noqa: E402
from cloudkitty import service as ck_service  # noqa: E402

CONF = cfg.CONF
ck_service.prepare_service(["cloudkitty-processor", "--config-file", conf_path])

through_aetos = collector.get_collector()
cc.check("[collect] collector = aetos loads the AetosCollector", type(through_aetos).__name__, "AetosCollector")
CONF.set_override("collector", "prometheus", "collect")
direct = collector.get_collector()
cc.check("[collect] collector = prometheus loads the PrometheusCollector", type(direct).__name__, "PrometheusCollector")

end = datetime.datetime.fromtimestamp(e["diff"]["end"], tz=datetime.timezone.utc)
start = end - datetime.timedelta(seconds=CONF.collect.period)


def collect(c, metric, scope):
    try:
        name, points = c.retrieve(metric, start, end, project_id=scope)
    except collector.NoDataCollected as err:
        return "no data: " + str(err).replace(c.collector_name, "COLLECTOR")
    return name, sorted(
        (sorted(p.groupby.items()), sorted(p.metadata.items()), str(p.qty), p.unit) for p in points
    )


for metric in through_aetos.conf:
    for scope in (e["diff"]["project_a"], e["diff"]["project_b"]):
        got = collect(through_aetos, metric, scope)
        want = collect(direct, metric, scope)
        cc.check_true(f"{metric} for {scope}: the period has data", not isinstance(want, str), want)
        cc.check(f"{metric} for {scope}: aetos collector equals prometheus collector", got, want)

cc.finish()
