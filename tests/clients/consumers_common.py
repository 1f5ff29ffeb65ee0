"""Shared plumbing of the consumer helpers (tests/clients/consumer_*.py).

Each helper runs in the stack's consumers virtualenv, imports a real
consumer of aetos (Watcher, Aodh, CloudKitty, prometheus-api-client),
configures it the way that service configures itself (an oslo.config file
read by the service's own ``prepare_service``; aetos found through the
Keystone catalog), and compares what the consumer gets through aetos with
the same request made directly to the stack's main Prometheus.

Checks are collected, not raised one by one, so that one run reports every
difference.  The last line printed is a JSON summary
``{"checks": N, "failed": [...]}``; the exit status is 1 when a check
failed.  The Rust test asserts the status and the number of checks (a
helper that silently checks nothing fails too).
"""

import json
import os
import sys
import tempfile
import urllib.parse
import urllib.request

_CHECKS = []
_FAILED = []


def env():
    """The stack's env.json (path in argv[1])."""
    with open(sys.argv[1], encoding="utf-8") as f:
        return json.load(f)


def check(name, got, want):
    """Record a check: ``got`` (through aetos) must equal ``want``."""
    _CHECKS.append(name)
    ok = got == want
    if not ok:
        _FAILED.append(name)
    print(json.dumps({"check": name, "ok": ok, "got": _plain(got), "want": _plain(want)}, default=str))
    sys.stdout.flush()


def check_true(name, cond, detail=None):
    """Record a check that ``cond`` holds (``detail`` is printed with it)."""
    _CHECKS.append(name)
    if not cond:
        _FAILED.append(name)
    print(json.dumps({"check": name, "ok": bool(cond), "detail": _plain(detail)}, default=str))
    sys.stdout.flush()


def _plain(v):
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    return v


def finish():
    """Print the summary and exit (1 when a check failed)."""
    print(json.dumps({"checks": len(_CHECKS), "failed": _FAILED}))
    sys.exit(1 if _FAILED else 0)


def prom_get(e, endpoint, params):
    """GET ``/api/v1/<endpoint>`` directly on the main Prometheus; the decoded body."""
    url = f"{e['prometheus_url']}/api/v1/{endpoint}?{urllib.parse.urlencode(params, doseq=True)}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=60) as r:
        return json.load(r)


def credentials(e, user):
    """oslo.config / keystoneauth password options of a seeded user."""
    u = e["users"][user]
    lines = [
        "auth_type = password",
        f"auth_url = {e['keystone_url']}",
        f"username = {user}",
        f"password = {u['password']}",
        "user_domain_id = default",
    ]
    if u["project"]:
        lines += [f"project_name = {u['project']}", "project_domain_id = default"]
    return "\n".join(lines) + "\n"


def write_conf(name, text):
    """Write a service's config file in a fresh temporary directory; its path."""
    d = tempfile.mkdtemp(prefix=f"aetos-consumer-{name}-")
    path = os.path.join(d, f"{name}.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def keystone_token(e, user):
    """A project-scoped Keystone token of a seeded user (keystoneauth)."""
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    u = e["users"][user]
    auth = v3.Password(
        auth_url=e["keystone_url"],
        username=user,
        password=u["password"],
        user_domain_id="default",
        project_name=u["project"],
        project_domain_id="default",
    )
    return ks_session.Session(auth=auth).get_token()
