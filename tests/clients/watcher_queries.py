"""Watcher's four aetos query templates through python-observabilityclient.

Run with the stack's venv python. Authenticates as the cloud named in argv[1]
(from clouds.yaml, e.g. the `aetos` service user), discovers aetos through
the Keystone catalog exactly as Watcher's datasource does (service type
metric-storage, interface public) and prints one JSON line per query with
the result type and number of series.
"""
import json
import sys

import openstack.config
from keystoneauth1 import session as ks_session
from observabilityclient import client as obs_client

cloud = openstack.config.OpenStackConfig().get_one(cloud=sys.argv[1])
sess = ks_session.Session(auth=cloud.get_auth())
c = obs_client.Client(
    "1", sess, adapter_options={"interface": "public", "region_name": "RegionOne"}
)

L, U, P = "fqdn", "resource", 300
host = sys.argv[2]
uuid = sys.argv[3]
templates = [
    f"100 - (avg by ({L})(rate(node_cpu_seconds_total{{mode='idle',{L}='{host}'}}[{P}s])) * 100)",
    f"(node_memory_MemTotal_bytes{{{L}='{host}'}} - max_over_time(node_memory_MemAvailable_bytes{{{L}='{host}'}}[{P}s])) / 1024",
    f"min_over_time(ceilometer_memory_usage{{{U}='{uuid}'}}[{P}s])",
    f"clamp_max((max by ({U})(rate(ceilometer_cpu{{{U}='{uuid}'}}[{P}s]))/10e+8) *(100/2), 100)",
]
for q in templates:
    result = c.query.query(q)
    print(json.dumps({"query": q, "series": len(result), "result": [str(r) for r in result]}))
