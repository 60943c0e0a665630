#!/usr/bin/env bash
# `telemachy schema`: prints a valid JSON Schema (2020-12) that accepts every
# example and rejects broken specs, each of which `telemachy validate` rejects
# too (exit 2, with the expected rule id).
#
# Needs /usr/bin/python3 with Debian's python3-jsonschema and python3-yaml
# (called by path: another python3 earlier in PATH may lack them).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

# --- the command itself -------------------------------------------------------
"$TLM_BIN" schema >"$tmp/schema.json" || fail "telemachy schema exited $?"
"$TLM_BIN" schema --help >"$tmp/help.txt" || fail "schema --help exited $?"
grep -q 'Usage: telemachy schema' "$tmp/help.txt" || fail "schema --help prints no usage"
rc=0; "$TLM_BIN" schema extra >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "schema with an argument exited $rc, want 2"
rc=0; "$TLM_BIN" schema --no-such-option >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "schema with an unknown option exited $rc, want 2"
"$TLM_BIN" --output json schema >"$tmp/schema-json.json" || fail "--output json schema exited $?"
cmp -s "$tmp/schema.json" "$tmp/schema-json.json" || fail "--output json changes the schema output"

# --- invalid documents: each breaks exactly one rule ----------------------------
# invalid NAME RULE <<'EOF' ... EOF: RULE is the rule id validate must report.
mkdir "$tmp/invalid"
: >"$tmp/rules.txt"
invalid() {
	cat >"$tmp/invalid/$1.yaml"
	printf '%s %s\n' "$1" "$2" >>"$tmp/rules.txt"
}

# The valid document the invalid ones are variations of.
cat >"$tmp/base.yaml" <<'EOF'
apiVersion: telemachy/v1
metadata:
  name: base
  owner: someone
agents:
  - name: a1
    program: none
    runtime: docker
    docker_image: "debian:bookworm"
    cpus: 2
    memory: 2Gi
    env:
      MY_VAR: "x"
  - name: a2
    program: none
teams:
  - name: core
    agents: [a1, a2]
    tasks:
      - subject: first
        description: The first task.
        assign_to: a1
      - subject: second
        description: The second task.
        assign_to: a2
        blocked_by: [first]
        retries: 3
        timeout_seconds: 60
teardown: always
timeout_seconds: 600
hooks:
  - event: task_failed
    command: [/usr/local/bin/notify, --run, 3]
    timeout_seconds: 10
  - event: run_completed
    url: https://hooks.example.com/telemachy
    secret_file: /etc/telemachy/hook.key
  - {event: teardown_failed, url: "http://127.0.0.1:8080/x"}
EOF

invalid unknown-top-key unknown-key <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agent:
  - name: a1
EOF
invalid unknown-task-key unknown-key <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents: [{name: a1, program: none}]
teams:
  - name: core
    agents: [a1]
    tasks:
      - subject: s
        description: d
        blocked: [t]
EOF
invalid api-version-v2 api-version <<'EOF'
apiVersion: telemachy/v2
metadata: {name: x}
EOF
invalid api-version-missing required <<'EOF'
metadata: {name: x}
EOF
invalid metadata-name-missing required <<'EOF'
apiVersion: telemachy/v1
metadata: {description: no name}
EOF
invalid metadata-label-list type <<'EOF'
apiVersion: telemachy/v1
metadata:
  name: x
  owners: [ann, bob]
EOF
invalid docker-without-image docker-image <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    runtime: docker
EOF
invalid local-with-image docker-image <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    runtime: local
    docker_image: "debian:bookworm"
EOF
invalid default-runtime-with-image docker-image <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    docker_image: "debian:bookworm"
EOF
invalid bad-runtime enum <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    runtime: podman
EOF
invalid cpus-0 range <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    cpus: 0
EOF
invalid cpus-300 range <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    cpus: 300
EOF
invalid cpus-string type <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    cpus: "2"
EOF
invalid agent-name-space name-format <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: "bad name"
EOF
invalid agent-name-64 name-format <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a123456789012345678901234567890123456789012345678901234567890123
EOF
invalid team-name-slash name-format <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
teams:
  - name: core/x
EOF
invalid empty-subject empty <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents: [{name: a1, program: none}]
teams:
  - name: core
    agents: [a1]
    tasks:
      - subject: ""
        description: d
EOF
invalid empty-description empty <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents: [{name: a1, program: none}]
teams:
  - name: core
    agents: [a1]
    tasks:
      - subject: s
        description: ""
EOF
invalid missing-description required <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents: [{name: a1, program: none}]
teams:
  - name: core
    agents: [a1]
    tasks:
      - subject: s
EOF
# 513 ASCII bytes: over the 512-byte limit whichever way it is counted.
{
	printf 'apiVersion: telemachy/v1\nmetadata: {name: x}\n'
	printf 'agents: [{name: a1, program: none}]\n'
	printf 'teams:\n  - name: core\n    agents: [a1]\n    tasks:\n'
	printf '      - subject: %s\n        description: d\n' "$(printf 'x%.0s' $(seq 513))"
} | invalid subject-too-long too-long
# What a run cannot journal or send (docs/spec.md, "Limits of the control
# plane and the journal"): a 256-byte workflow name, a 1,025-byte program,
# 1,001 args.
printf 'apiVersion: telemachy/v1\nmetadata: {name: %s}\n' "$(printf 'w%.0s' $(seq 256))" |
	invalid workflow-name-too-long too-long
printf 'apiVersion: telemachy/v1\nmetadata: {name: x}\nagents: [{name: a1, program: %s}]\n' \
	"$(printf 'p%.0s' $(seq 1025))" | invalid program-too-long too-long
printf 'apiVersion: telemachy/v1\nmetadata: {name: x}\nagents: [{name: a1, args: [%s]}]\n' \
	"$(seq -s, 1001)" | invalid args-too-many too-many
invalid bad-memory-unit memory-format <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    memory: 4x
EOF
invalid bad-memory-space memory-format <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    memory: 4 GB
EOF
invalid memory-zero memory-format <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    memory: 0g
EOF
invalid working-dir-relative working-dir <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    working_dir: src
EOF
invalid timeout-over-a-year range <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
timeout_seconds: 31536001
EOF
invalid bad-teardown enum <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
teardown: sometimes
EOF
invalid timeout-zero range <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
timeout_seconds: 0
EOF
invalid retries-101 range <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents: [{name: a1, program: none}]
teams:
  - name: core
    agents: [a1]
    tasks:
      - subject: s
        description: d
        retries: 101
EOF
invalid env-key-dash env-name <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    env:
      MY-VAR: "1"
EOF
invalid env-key-digit env-name <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    env:
      1VAR: "1"
EOF
invalid env-list type <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    env: [A=1]
EOF
invalid metadata-list type <<'EOF'
apiVersion: telemachy/v1
metadata: [name, x]
EOF
invalid agents-map type <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  a1: {program: none}
EOF
invalid args-map type <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    args: [{verbose: true}]
EOF
invalid program-integer type <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a1
    program: 4
EOF
invalid duplicate-member duplicate-member <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents: [{name: a1, program: none}]
teams:
  - name: core
    agents: [a1, a1]
EOF
invalid assign-to-missing assign-to <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
agents: [{name: a1, program: none}, {name: a2, program: none}]
teams:
  - name: core
    agents: [a1, a2]
    tasks:
      - subject: s
        description: d
EOF
invalid task-without-agents assign-to <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
teams:
  - name: core
    tasks:
      - subject: s
        description: d
EOF

# --- JSON Schema checks -----------------------------------------------------------
invalid hook-bad-event enum <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: task_done, command: [x]}]
EOF
invalid hook-both hook-kind <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed, command: [x], url: "https://h/"}]
EOF
invalid hook-neither hook-kind <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed}]
EOF
invalid hook-http-remote hook-url <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed, url: "http://hooks.example.com/x"}]
EOF
invalid hook-userinfo hook-url <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed, url: "http://localhost@evil.example/x"}]
EOF
invalid hook-timeout range <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed, command: [x], timeout_seconds: 601}]
EOF
invalid hook-empty-command hook-command <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed, command: []}]
EOF
invalid hook-command-secret hook-kind <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed, command: [x], secret_file: /k}]
EOF
invalid hook-relative-secret hook-secret-file <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed, url: "https://h/", secret_file: k}]
EOF
invalid hook-unknown-key unknown-key <<'EOF'
apiVersion: telemachy/v1
metadata: {name: x}
hooks: [{event: run_failed, command: [x], retries: 3}]
EOF

"$PY" - "$tmp/schema.json" "$TLM_SOURCE_DIR" "$tmp" <<'EOF' || fail "JSON Schema checks failed"
import collections, glob, json, os, sys

import jsonschema
import yaml

schema_path, source_dir, tmp = sys.argv[1:4]
ok = True

def bad(msg):
    global ok
    ok = False
    print("FAIL: " + msg, file=sys.stderr)

with open(schema_path) as f:
    schema = json.load(f)
with open(os.path.join(source_dir, "src/spec/schema.json")) as f:
    if json.load(f) != schema:
        bad("`telemachy schema` differs from src/spec/schema.json (stale build?)")

jsonschema.Draft202012Validator.check_schema(schema)
if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
    bad("$schema is not draft 2020-12")
validator = jsonschema.Draft202012Validator(schema)

def load(path):
    with open(path) as f:
        return yaml.safe_load(f)

examples = sorted(glob.glob(os.path.join(source_dir, "examples/*.yaml")))
if len(examples) < 4:
    bad("expected at least 4 examples, found %d" % len(examples))
for path in examples + [os.path.join(tmp, "base.yaml")]:
    for e in validator.iter_errors(load(path)):
        bad("%s: %s (at /%s)" % (path, e.message, "/".join(map(str, e.absolute_path))))

invalid = sorted(glob.glob(os.path.join(tmp, "invalid/*.yaml")))
for path in invalid:
    if validator.is_valid(load(path)):
        bad("the schema accepts invalid document %s" % os.path.basename(path))
print("schema: %d examples accepted, %d invalid documents rejected" % (len(examples), len(invalid)))
sys.exit(0 if ok else 1)
EOF

# --- telemachy validate agrees -------------------------------------------------
status=0
for f in "$TLM_SOURCE_DIR"/examples/*.yaml "$tmp/base.yaml"; do
	rc=0; out=$("$TLM_BIN" validate "$f" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: validate $f exited $rc, want 0:" >&2
		echo "$out" >&2
		status=1
	fi
done
while read -r name rule; do
	f="$tmp/invalid/$name.yaml"
	rc=0; out=$("$TLM_BIN" validate "$f" 2>&1) || rc=$?
	if [ "$rc" -ne 2 ]; then
		echo "FAIL: validate $name.yaml exited $rc, want 2:" >&2
		echo "$out" >&2
		status=1
	elif ! grep -qF "[$rule]" <<<"$out"; then
		echo "FAIL: validate $name.yaml does not report [$rule]:" >&2
		echo "$out" >&2
		status=1
	fi
done <"$tmp/rules.txt"
[ "$status" -eq 0 ] || exit 1
echo "ok"
