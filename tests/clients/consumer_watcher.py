"""Watcher 17's ``aetos`` datasource through aetos, against direct Prometheus.

Usage: consumer_watcher.py ENV_JSON

Configured as the decision engine is: a watcher.conf read by Watcher's own
``prepare_service`` ([watcher_clients_auth] = the stack's ``aetos`` service
user, [watcher_datasources] datasources = aetos, [aetos_client]); the
datasource manager picks the backend and the datasource finds aetos in the
Keystone catalog (service type metric-storage).  Aetos must listen where the
catalog says.

Watcher sends its instant queries without ``time`` (Prometheus evaluates
them "now").  To compare with direct Prometheus at the same evaluation
time, the helper adds one fixed ``time`` to the datasource client's
requests to ``query``; everything else (the PromQL, the parsing, the
aggregate mapping) is Watcher's own code.
"""

import functools
import time

import consumers_common as cc

e = cc.env()
conf_path = cc.write_conf(
    "watcher",
    f"""[DEFAULT]
debug = false

[watcher_clients_auth]
{cc.credentials(e, "aetos")}
[watcher_datasources]
datasources = aetos

[aetos_client]
interface = public
region_name = {e["region"]}
fqdn_label = fqdn
instance_uuid_label = resource
""",
)

from oslo_config import cfg  # noqa: E402

from watcher.common import clients  # noqa: E402
from watcher.common import service as watcher_service  # noqa: E402
from watcher.decision_engine.datasources import aetos as aetos_ds  # noqa: E402
from watcher.decision_engine.datasources import manager  # noqa: E402
from watcher.decision_engine.model import element  # noqa: E402

CONF = cfg.CONF
watcher_service.prepare_service(["watcher-decision-engine", "--config-file", conf_path], CONF)

metrics = ["host_cpu_usage", "host_ram_usage", "instance_cpu_usage", "instance_ram_usage"]
dsm = manager.DataSourceManager(config=CONF.watcher_datasources, osc=clients.OpenStackClients())
ds = dsm.get_backend(metrics)
cc.check("datasource manager returns the aetos datasource", type(ds).__name__, "AetosHelper")
cc.check_true("it is Watcher's AetosHelper", isinstance(ds, aetos_ds.AetosHelper))

host = e["watcher"]["host"]
cc.check_true(
    "host map from targets?state=active holds the stack's host",
    host in ds.prometheus_fqdn_labels,
    sorted(ds.prometheus_fqdn_labels),
)

cc.check("check_availability", ds.check_availability(), "available")
direct_names = set(cc.prom_get(e, "label/__name__/values", {})["data"])
cc.check("list_metrics equals direct label/__name__/values", ds.list_metrics(), direct_names)

# One evaluation time for Watcher's queries and the direct ones.
eval_time = str(int(time.time()) - 2)
sent = []
client_get = ds.prometheus._get


@functools.wraps(client_get)
def _get_at(endpoint, params=None):
    if endpoint == "query":
        params = dict(params or {}, time=eval_time)
        sent.append(params["query"])
    return client_get(endpoint, params)


ds.prometheus._get = _get_at

node = element.ComputeNode(
    uuid="compute-0", hostname=host, state="up", status="enabled", vcpus=2, memory=16384, disk=100
)
instance = element.Instance(uuid=e["watcher"]["instance_uuid"], name="demo-vm-1", vcpus=2, memory=512, disk=1)

L, U, P = "fqdn", "resource", 300
uuid = e["watcher"]["instance_uuid"]
cases = [
    ("host cpu usage (mean)", lambda: ds.get_host_cpu_usage(node, period=P, aggregate="mean"),
     f"100 - (avg by ({L})(rate(node_cpu_seconds_total{{mode='idle',{L}='{host}'}}[{P}s])) * 100)"),
    ("host cpu usage (max)", lambda: ds.get_host_cpu_usage(node, period=P, aggregate="max"),
     f"100 - (min by ({L})(rate(node_cpu_seconds_total{{mode='idle',{L}='{host}'}}[{P}s])) * 100)"),
    ("host ram usage (mean)", lambda: ds.get_host_ram_usage(node, period=P, aggregate="mean"),
     f"(node_memory_MemTotal_bytes{{{L}='{host}'}} - avg_over_time(node_memory_MemAvailable_bytes{{{L}='{host}'}}[{P}s])) / 1024"),
    ("host ram usage (max)", lambda: ds.get_host_ram_usage(node, period=P, aggregate="max"),
     f"(node_memory_MemTotal_bytes{{{L}='{host}'}} - min_over_time(node_memory_MemAvailable_bytes{{{L}='{host}'}}[{P}s])) / 1024"),
    ("instance cpu usage (mean)", lambda: ds.get_instance_cpu_usage(instance, period=P, aggregate="mean"),
     f"clamp_max((avg by ({U})(rate(ceilometer_cpu{{{U}='{uuid}'}}[{P}s]))/10e+8) *(100/2), 100)"),
    ("instance ram usage (min)", lambda: ds.get_instance_ram_usage(instance, period=P, aggregate="min"),
     f"min_over_time(ceilometer_memory_usage{{{U}='{uuid}'}}[{P}s])"),
]
for name, call, template in cases:
    del sent[:]
    value = call()
    cc.check(f"{name}: PromQL is the documented template", sent[-1:], [template])
    direct = cc.prom_get(e, "query", {"query": template, "time": eval_time})["data"]["result"]
    cc.check_true(f"{name}: direct Prometheus has a value", len(direct) == 1, direct)
    want = float(direct[0]["value"][1]) if direct else None
    cc.check(f"{name}: equals direct Prometheus at {eval_time}", value, want)

cc.finish()
