#!/usr/bin/env bash
# Attack the daemon's control API with schemathesis (PyPI), driven by the OpenAPI document
# the daemon serves at /api/openapi.json: every check (no 5xx, answers as documented,
# invalid input refused, valid input taken, stateful sequences), against a live daemon on
# the stand-in, once open on loopback and once with a token. Then every answer it got is
# searched for the accounts' secrets and the token: none may appear.
#
#   bash scripts/schemathesis-check.sh [EXAMPLES]   (default 100 examples per operation)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
examples="${1:-100}"
venv="$root/target/schemathesis-venv"

if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "schemathesis-check: installing schemathesis into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi
cargo build --quiet
bin="$root/target/debug/switchboard"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  for candidate in $(seq "$1" $(($1 + 99))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return; fi
  done
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "schemathesis-check: nothing listens on $1" >&2
  exit 1
}

# The flows: the quickstart's, an invalid one (its problems are part of the answers), and
# accounts whose secrets are values no answer may hold.
mkdir -p "$work/flows"
cp "$root/examples/quickstart/"* "$work/flows/"
printf 'name: broken\nsource: {connector: csv, path: nowhere.csv}\nreceiver: {connector: 8x8, account: nobody}\nmap: {}\n' >"$work/flows/broken.yaml"
secret="st-secret-$(date +%s%N)"
token="st-token-$(date +%s%N)"

sandbox_port="$(free_port 4710)"
"$bin" sandbox --listen "127.0.0.1:$sandbox_port" --smtp 127.0.0.1:0 >"$work/sandbox.log" 2>&1 &
pids+=($!)
wait_port "$sandbox_port"

failed=0
# attack NAME [DAEMON ARGS...]: a daemon of its own, schemathesis against it, the answers
# searched for secrets.
attack() {
  local name="$1"
  shift
  local port
  port="$(free_port 7710)"
  # Each daemon its own copy of the flows: a flows directory remembers its state.
  cp -r "$work/flows" "$work/flows-$name"
  EIGHTX8_API_KEY="$secret" SWITCHBOARD_SANDBOX_URL="http://127.0.0.1:$sandbox_port" \
    "$bin" daemon --flows "$work/flows-$name" --state "$work/state-$name" --listen "127.0.0.1:$port" "$@" \
    >"$work/daemon-$name.log" 2>&1 &
  local daemon=$!
  pids+=("$daemon")
  wait_port "$port"
  local headers=()
  if [ "$name" = token ]; then headers=(-H "Authorization: Bearer $token"); fi
  echo "== schemathesis: the API ($name), $examples examples per operation"
  if ! "$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/openapi.json" \
    --checks all -n "$examples" "${headers[@]}" \
    --report vcr --report-vcr-path "$work/$name.yaml"; then
    failed=1
  fi
  # The answers (not the requests, which carry the token) must hold no secret.
  if ! "$venv/bin/python" - "$work/$name.yaml" "$secret" "$token" <<'PY'
import sys, yaml
cassette, *secrets = sys.argv[1:]
with open(cassette) as f:
    data = yaml.safe_load(f)
leaks = 0
for interaction in data.get("http_interactions", []):
    response = interaction.get("response") or {}
    text = str(response.get("body")) + str(response.get("headers"))
    for secret in secrets:
        if secret in text:
            leaks += 1
            print(f"a secret in the answer to {interaction['request']['method']} {interaction['request']['uri']}")
print(f"{len(data.get('http_interactions', []))} answers searched for secrets: {leaks} found")
sys.exit(1 if leaks else 0)
PY
  then
    failed=1
  fi
  kill "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
}

attack open
attack token --token "$token"
exit "$failed"
