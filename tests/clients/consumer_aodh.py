"""Aodh 23's prometheus evaluator through aetos, against direct Prometheus.

Usage: consumer_aodh.py ENV_JSON

Configured as aodh-evaluator is: an aodh.conf read by Aodh's own
``prepare_service`` ([service_credentials] = the stack's ``aetos`` service
user, interface public, the stack's region); the evaluator is loaded from
its ``aodh.evaluator`` entry point like the evaluation service does, and its
python-observabilityclient finds aetos in the Keystone catalog.  Aetos must
listen where the catalog says.  Notifications go to oslo.messaging's
in-process ``fake://`` transport: no alarm is stored or notified here, the
test is the rule's evaluation (``evaluate_rule``).

The rules are chosen so that their values do not move with time (constant
gauges, counts), so the evaluator's statistics through aetos and the same
query on direct Prometheus must be equal.
"""

import consumers_common as cc

e = cc.env()
conf_path = cc.write_conf(
    "aodh",
    f"""[DEFAULT]
transport_url = fake://

[service_credentials]
{cc.credentials(e, "aetos")}interface = public
region_name = {e["region"]}
""",
)

from stevedore import extension  # noqa: E402

from aodh.evaluator import threshold  # noqa: E402
from aodh import service as aodh_service  # noqa: E402

conf = aodh_service.prepare_service(["--config-file", conf_path], with_gmr=False)
# As AlarmEvaluationService loads them (every evaluator of the namespace).
evaluators = extension.ExtensionManager(namespace="aodh.evaluator", invoke_on_load=True, invoke_args=(conf,))
ev = evaluators["prometheus"].obj
cc.check("the prometheus entry point is Aodh's PrometheusEvaluator", type(ev).__name__, "PrometheusEvaluator")

demo, other = e["projects"]["demo"], e["projects"]["other"]


def direct_values(query):
    result = cc.prom_get(e, "query", {"query": query})["data"]["result"]
    return sorted(float(r["value"][1]) for r in result)


def evaluate(rule):
    """(state, trending state, sorted statistics), or ("insufficient data", ...)."""
    try:
        state, trending, stats, _outside, _reason = ev.evaluate_rule(rule)
        return state, trending, sorted(stats)
    except threshold.InsufficientDataError as err:
        return "insufficient data", None, sorted(err.statistics)


def rule(query, op, limit, project=None):
    r = {"query": query, "comparison_operator": op, "threshold": limit}
    if project:
        # What Aodh's API stores for a prometheus alarm of a non-admin project.
        r["scope_to_project"] = project
    return r


# Unscoped rules, as an admin's alarm (the service user is privileged).
for query, op, limit, want_state in [
    ("demo_only_metric", "gt", 40, "alarm"),
    ("demo_only_metric", "gt", 50, "ok"),
    ("count(ceilometer_cpu)", "ge", 3, "alarm"),
    ("sum by (project) (other_only_metric)", "lt", 5, "ok"),
    # Unlabelled series of the backend itself: forwarded unscoped.
    ("count(up)", "ge", 1, "alarm"),
]:
    state, _, stats = evaluate(rule(query, op, limit))
    cc.check(f"{query} {op} {limit}: state", state, want_state)
    cc.check(f"{query}: statistics equal direct Prometheus", stats, direct_values(query))

# Project-scoped rules: the evaluator adds the project label itself
# (python-observabilityclient's PromQLRbac, metric names from aetos).
state, _, stats = evaluate(rule("count(ceilometer_cpu)", "gt", 1, demo))
cc.check("scoped to demo: count(ceilometer_cpu) > 1: state", state, "alarm")
cc.check("scoped to demo: statistics", stats, direct_values(f'count(ceilometer_cpu{{project="{demo}"}})'))
cc.check("scoped to demo: two VMs", stats, [2.0])
state, _, stats = evaluate(rule("count(ceilometer_cpu)", "gt", 1, other))
cc.check("scoped to other: count(ceilometer_cpu) > 1: state", state, "ok")
cc.check("scoped to other: statistics", stats, direct_values(f'count(ceilometer_cpu{{project="{other}"}})'))
state, _, stats = evaluate(rule("demo_only_metric", "gt", 0, other))
cc.check("scoped to other: demo_only_metric has no data", (state, stats), ("insufficient data", []))

cc.finish()
