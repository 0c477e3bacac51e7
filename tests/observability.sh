#!/usr/bin/env bash
# Checks the observability files: Prometheus alert rules (syntax and unit
# tests), the local Prometheus config, the Grafana dashboard and provisioning.
# Installs promtool (Debian's `prometheus` package) when missing; never starts
# a Prometheus service. Ends with "observability: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."

RULES_DIR=deploy/prometheus/rules
TESTS_DIR=deploy/prometheus/tests
CONFIG=deploy/prometheus/prometheus-local.yml
DASHBOARDS_DIR=deploy/grafana/dashboards
PROVISIONING_DIR=deploy/grafana/provisioning

install_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  echo "installing promtool (Debian package prometheus)" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install prometheus" >&2; return 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Only promtool is wanted: stop a system Prometheus the package may start.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

install_promtool
command -v python3 >/dev/null 2>&1 || { echo "python3 is required" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
# check NAME COMMAND...: runs one check, prints its output on failure.
check() {
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    head -n 60 "$work/out" | sed 's/^/     /'
  fi
}

shopt -s nullglob
rule_files=("$RULES_DIR"/*.yml)
test_files=("$TESTS_DIR"/*.yml)
dashboards=("$DASHBOARDS_DIR"/*.json)
shopt -u nullglob
[ ${#rule_files[@]} -gt 0 ] || { echo "no rule files in $RULES_DIR" >&2; exit 1; }
[ ${#test_files[@]} -gt 0 ] || { echo "no rule tests in $TESTS_DIR" >&2; exit 1; }
[ ${#dashboards[@]} -gt 0 ] || { echo "no dashboards in $DASHBOARDS_DIR" >&2; exit 1; }

# --- Prometheus -------------------------------------------------------------
check "promtool check rules ${rule_files[*]}" promtool check rules "${rule_files[@]}"
check "promtool test rules ${test_files[*]}" promtool test rules "${test_files[@]}"
check "promtool check config $CONFIG" promtool check config "$CONFIG"

# Every alert: for, severity page|ticket, summary, description and a runbook
# anchor RUNBOOK.md#alert-<name-lowercase>; and at least one firing test case.
alert_conventions() {
  python3 - "$@" <<'EOF'
import re, sys
rule_files = [f for f in sys.argv[1:] if "/rules/" in f]
test_text = "".join(open(f).read() for f in sys.argv[1:] if "/tests/" in f)
errors, names = [], []
for path in rule_files:
    text = open(path).read()
    blocks = re.split(r"(?m)^\s*- alert:\s*", text)[1:]
    for block in blocks:
        name = block.split()[0]
        names.append(name)
        body = re.split(r"(?m)^\s*- (?:alert|record):", block)[0]
        for field in (r"^\s+for:\s*\S+", r"^\s+severity:\s*(page|ticket)\s*$", r"^\s+summary:\s*\S",
                      r"^\s+description:\s*\S"):
            if not re.search(field, body, re.M):
                errors.append(f"{name}: missing {field}")
        anchor = f"RUNBOOK.md#alert-{name.lower()}"
        if not re.search(r'^\s+runbook_url:\s*"?\S*' + re.escape(anchor) + r'"?\s*$', body, re.M):
            errors.append(f"{name}: runbook_url must end in {anchor}")
        # A firing case: "alertname: NAME" followed by a non-empty exp_alerts.
        if not re.search(r"alertname:\s*" + re.escape(name) + r"\s*\n\s*exp_alerts:\s*\n\s*- ", test_text):
            errors.append(f"{name}: no firing test case")
if len(set(names)) != len(names):
    errors.append("duplicate alert names")
if not names:
    errors.append("no alerts found")
print("\n".join(errors) or f"{len(names)} alerts: " + ", ".join(names))
sys.exit(1 if errors else 0)
EOF
}
check "alerts have for, severity, annotations, runbook anchor and a firing test" \
  alert_conventions "${rule_files[@]}" "${test_files[@]}"

# --- Grafana ----------------------------------------------------------------
dashboard_structure() {
  python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
errors = []
ds = {"type": "prometheus", "uid": "${datasource}"}
vars_ = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
v = vars_.get("datasource")
if not v or v.get("type") != "datasource" or v.get("query") != "prometheus":
    errors.append("missing the datasource/prometheus template variable 'datasource'")
for key in ("uid", "title", "schemaVersion", "panels"):
    if key not in d:
        errors.append(f"missing {key}")
panels = []
for p in d.get("panels", []):
    panels.append(p)
    panels.extend(p.get("panels", []))  # panels inside collapsed rows
ids = [p.get("id") for p in panels]
if len(ids) != len(set(ids)):
    errors.append("duplicate panel ids")
for p in panels:
    title = p.get("title", "?")
    if p.get("datasource") != ds:
        errors.append(f"panel {title!r}: datasource is {p.get('datasource')!r}, want {ds}")
    if p.get("type") != "row" and not p.get("targets"):
        errors.append(f"panel {title!r}: no queries")
    for t in p.get("targets", []):
        if t.get("datasource") != ds:
            errors.append(f"panel {title!r} query {t.get('refId')}: datasource is {t.get('datasource')!r}")
        if not t.get("expr"):
            errors.append(f"panel {title!r} query {t.get('refId')}: empty expr")
    g = p.get("gridPos", {})
    if not all(k in g for k in ("x", "y", "w", "h")) or g["x"] + g["w"] > 24:
        errors.append(f"panel {title!r}: bad gridPos {g}")
for a in d.get("annotations", {}).get("list", []):
    if "expr" in a and a.get("datasource") != ds:
        errors.append(f"annotation {a.get('name')!r}: datasource is {a.get('datasource')!r}")
print("\n".join(errors) or f"{len(panels)} panels, all on ${{datasource}}")
sys.exit(1 if errors else 0)
EOF
}

# Each query must be valid PromQL: wrap them as recording rules (Grafana's
# $__ variables replaced by durations) and let promtool parse them.
dashboard_promql() {
  python3 - "$1" "$work/dashboard-rules.yml" <<'EOF' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
exprs = []
for p in d.get("panels", []):
    for q in p.get("panels", []) + [p]:
        exprs += [t["expr"] for t in q.get("targets", []) if t.get("expr")]
exprs += [a["expr"] for a in d.get("annotations", {}).get("list", []) if a.get("expr")]
subst = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        for k, v in subst.items():
            e = e.replace(k, v)
        out.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")
EOF
  promtool check rules "$work/dashboard-rules.yml"
}

for dashboard in "${dashboards[@]}"; do
  check "$dashboard is valid JSON" python3 -m json.tool "$dashboard"
  check "$dashboard: every panel and query uses \${datasource}" dashboard_structure "$dashboard"
  check "$dashboard: every query is valid PromQL" dashboard_promql "$dashboard"
done

provisioning() {
  python3 - "$PROVISIONING_DIR" <<'EOF'
import re, sys
d = sys.argv[1]
ds = open(f"{d}/datasources.yaml").read()
db = open(f"{d}/dashboards.yaml").read()
errors = []
for pat in (r"(?m)^apiVersion:\s*1\s*$", r"(?m)^\s+type:\s*prometheus\s*$", r"(?m)^\s+uid:\s*prometheus\s*$",
            r"(?m)^\s+url:\s*http://prometheus:9090\s*$"):
    if not re.search(pat, ds):
        errors.append(f"datasources.yaml: no match for {pat}")
for pat in (r"(?m)^apiVersion:\s*1\s*$", r"(?m)^\s+type:\s*file\s*$", r"(?m)^\s+path:\s*\S+"):
    if not re.search(pat, db):
        errors.append(f"dashboards.yaml: no match for {pat}")
if "\t" in ds + db:
    errors.append("tab in provisioning YAML")
print("\n".join(errors) or "ok")
sys.exit(1 if errors else 0)
EOF
}
check "grafana provisioning (prometheus datasource uid, file dashboard provider)" provisioning

echo "observability: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
