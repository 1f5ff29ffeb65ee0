"""Checks one rendered deploy/kubernetes overlay beyond its schema.

    check.py RENDERED.yaml AETOS_API_BINARY

kubernetes-validate says the objects are well-formed; this says they are
what the admin guide promises (doc/source/admin/kubernetes/): a hardened
pod whose probes and scrape annotations name the internal listener that its
aetos.conf opens, secrets only as files of the mounted Secret, a
NetworkPolicy wherever callers are not authenticated, and a configuration
that `aetos-api check-config` accepts with no unknown option. check-config
runs on the ConfigMap's files with the environment the Deployment sets, the
Secret's files written as throwaway values, and the variables that the
platform (a workload identity webhook, the EKS Pod Identity agent) injects
into the pod set to stand-in values, since no cluster is here.

Exits non-zero with one line per problem.
"""

import configparser
import os
import subprocess
import sys
import tempfile

import yaml

# What each cloud's pod identity machinery injects into the pod, keyed by
# how the overlay tells it wants it. Stand-in values: check-config only
# needs them to be present, it does not call the cloud.
PLATFORM_ENV = {
    ("prometheus_azure", "identity", "workload_identity"): {
        "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000000",
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
        "AZURE_FEDERATED_TOKEN_FILE": "token",
    },
    ("prometheus_aws", "credential_source", "web_identity"): {
        "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/stand-in",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "token",
    },
    ("prometheus_aws", "credential_source", "container"): {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "token",
    },
}


def main(rendered, binary):
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deployments = by_kind.get("Deployment", [])
    need(len(deployments) == 1, f"expected one Deployment, found {len(deployments)}")
    if not deployments:
        return problems
    dep = deployments[0]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    psc = spec.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True, "pod: runAsNonRoot is not true")
    need(psc.get("runAsUser", 0) != 0, "pod: runAsUser is root")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
         "pod: seccompProfile is not RuntimeDefault")
    need(spec.get("automountServiceAccountToken") is False,
         "pod: the Kubernetes API token is mounted")

    containers = {c["name"]: c for c in spec["containers"]}
    c = containers.get("aetos-api")
    need(c is not None, "no aetos-api container")
    if c is None:
        return problems
    csc = c.get("securityContext", {})
    need(csc.get("readOnlyRootFilesystem") is True, "container: root filesystem is writable")
    need(csc.get("allowPrivilegeEscalation") is False, "container: privilege escalation allowed")
    need(csc.get("capabilities", {}).get("drop") == ["ALL"], "container: capabilities not all dropped")
    need("memory" in c.get("resources", {}).get("limits", {}), "container: no memory limit")

    # Whatever selects aetos' pods selects them: a Service, the budget, a
    # NetworkPolicy whose selector misses the pods protects nothing.
    pod_labels = pod["metadata"].get("labels", {})

    def selects(selector):
        return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())

    for svc in by_kind.get("Service", []):
        need(selects(svc["spec"].get("selector")),
             f"Service {svc['metadata']['name']} does not select the pods")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        need(selects(pdb["spec"]["selector"].get("matchLabels")),
             f"PodDisruptionBudget {pdb['metadata']['name']} does not select the pods")
    need(by_kind.get("PodDisruptionBudget"), "no PodDisruptionBudget")
    for np in by_kind.get("NetworkPolicy", []):
        need(selects(np["spec"]["podSelector"].get("matchLabels")),
             f"NetworkPolicy {np['metadata']['name']} does not select the pods")

    # The configuration: the ConfigMap mounted at /etc/aetos, the files the
    # arguments name.
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    config_mount = mounts.get("/etc/aetos")
    need(config_mount is not None, "nothing mounted at /etc/aetos")
    if config_mount is None:
        return problems
    cm_name = volumes[config_mount["name"]]["configMap"]["name"]
    cms = [d for d in by_kind.get("ConfigMap", []) if d["metadata"]["name"] == cm_name]
    need(len(cms) == 1, f"ConfigMap {cm_name} of /etc/aetos is not in the rendering")
    if not cms:
        return problems
    files = cms[0]["data"]
    args = c.get("args", [])
    conf_files = [args[i + 1] for i, a in enumerate(args) if a == "--config-file"]
    need(conf_files, "no --config-file argument")
    for f in conf_files:
        need(os.path.dirname(f) == "/etc/aetos" and os.path.basename(f) in files,
             f"{f} is not a file of ConfigMap {cm_name}")

    merged = configparser.ConfigParser(interpolation=None, strict=False)
    for f in conf_files:
        merged.read_string(files.get(os.path.basename(f), ""), source=f)

    def opt(section, name, default=None):
        if section == "DEFAULT":
            return merged.defaults().get(name, default)
        return merged.get(section, name, fallback=default)

    # Probes and scrape annotations name the internal listener's port.
    internal = opt("api", "internal_listen")
    port = None
    api_port = int(opt("api", "port", "8080"))
    need(internal, "[api] internal_listen is not set")
    if internal:
        port = int(internal.rsplit(":", 1)[1])
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        need(ports.get("internal") == port,
             f"container port 'internal' is not {port} ([api] internal_listen)")
        for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
            get = c.get(probe, {}).get("httpGet", {})
            need(get.get("path") == path and get.get("port") in ("internal", port),
                 f"{probe} is not GET {path} on the internal port")
        ann = pod["metadata"].get("annotations", {})
        need(ann.get("prometheus.io/scrape") == "true", "no prometheus.io/scrape annotation")
        need(ann.get("prometheus.io/port") == str(port),
             f"prometheus.io/port is not {port}")
        need(ann.get("prometheus.io/path") == "/metrics", "prometheus.io/path is not /metrics")
        need(ports.get("http") == api_port, f"container port 'http' is not {api_port} ([api] port)")
    for svc in by_kind.get("Service", []):
        for p in svc["spec"]["ports"]:
            need(p.get("targetPort") != "internal" and p.get("targetPort") != port,
                 f"Service {svc['metadata']['name']} exposes the internal listener")

    # Unauthenticated callers only behind a NetworkPolicy.
    passthrough = (opt("api", "unauthenticated_passthrough", "false").lower() == "true")
    if passthrough:
        need(by_kind.get("NetworkPolicy"),
             "[api] unauthenticated_passthrough without a NetworkPolicy")
        need(by_kind.get("Ingress") is None, "an Ingress in front of an unauthenticated proxy")
        # Every rule that opens the API port names who may use it.
        api_rules = [rule for np in by_kind.get("NetworkPolicy", [])
                     for rule in np["spec"].get("ingress", [])
                     if not rule.get("ports")
                     or any(p.get("port") in ("http", api_port) for p in rule["ports"])]
        need(api_rules and all(rule.get("from") for rule in api_rules),
             "a NetworkPolicy opens the unauthenticated API port to every pod")

    # Secrets: only as files of the Secret volume.
    secret_dirs = {m["mountPath"]: volumes[m["name"]]["secret"]
                   for m in c.get("volumeMounts", []) if "secret" in volumes[m["name"]]}
    for e in c.get("env", []):
        need("valueFrom" not in e or "secretKeyRef" not in e["valueFrom"],
             f"env {e['name']}: a secret as an environment variable (use a file)")
        if e["name"].endswith("_FILE") and e["name"].startswith("OS_"):
            need(os.path.dirname(e["value"]) in secret_dirs,
                 f"env {e['name']}: {e['value']} is not in a mounted Secret")

    # The configuration as aetos reads it.
    with tempfile.TemporaryDirectory() as tmp:
        etc = os.path.join(tmp, "etc")
        os.mkdir(etc)
        for name, text in files.items():
            with open(os.path.join(etc, name), "w") as fh:
                fh.write(text)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
        secrets = os.path.join(tmp, "secrets")
        os.mkdir(secrets)
        for e in c.get("env", []):
            value = e.get("value", "")
            if os.path.dirname(value) in secret_dirs:
                path = os.path.join(secrets, os.path.basename(value))
                with open(path, "w") as fh:
                    fh.write("stand-in-secret-value\n")
                value = path
            env[e["name"]] = value
        token = os.path.join(tmp, "token")
        with open(token, "w") as fh:
            fh.write("stand-in.token.value\n")
        for (section, name, value), injected in PLATFORM_ENV.items():
            if opt(section, name) == value:
                for k, v in injected.items():
                    env[k] = token if v == "token" else v
        cmd = [binary, "check-config"]
        for f in conf_files:
            cmd += ["--config-file", os.path.join(etc, os.path.basename(f))]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        text = (out.stdout + out.stderr).strip()
        need(out.returncode == 0, f"check-config exited {out.returncode}: {text}")
        for line in text.splitlines():
            need(not line.startswith("warning:"), f"check-config: {line}")
    return problems


if __name__ == "__main__":
    found = main(sys.argv[1], sys.argv[2])
    for p in found:
        print(f"{sys.argv[1]}: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)
