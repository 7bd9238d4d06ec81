#!/usr/bin/env bash
# A cluster against one node, on one PostgreSQL state: FLOWS flows, each a CSV of ROWS rows
# sent as single 8x8 messages (concurrency 4) to the built-in stand-in, all force-run at
# once, spread over the nodes' APIs round robin. Prints wall time and rows/s for 1 node,
# then for NODES nodes (each a `switchboard daemon --cluster` with its own flows directory,
# same files), each on a fresh schema.
# Usage: bench/cluster-mix.sh [NODES=3] [FLOWS=12] [ROWS=2000] [POSTGRES=postgres://postgres@127.0.0.1:5432/test]
set -euo pipefail
nodes="${1:-3}"
flows="${2:-12}"
rows="${3:-2000}"
pg="${4:-postgres://postgres@127.0.0.1:5432/test}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SWITCHBOARD_BIN:-$root/target/release/switchboard}"
[ -x "$bin" ] || cargo build --release --quiet
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" sandbox --listen 127.0.0.1:4612 --smtp 127.0.0.1:0 >/dev/null 2>&1 &

setup() { # dir
  mkdir -p "$1/flows"
  printf 'sms:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: bench\n  base_url: http://127.0.0.1:4612\n  rate_limit: off\n' >"$1/flows/accounts.yaml"
  chmod 600 "$1/flows/accounts.yaml"
  python3 - "$1/flows/orders.csv" "$rows" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("order_id,name,phone\n")
    for i in range(int(sys.argv[2])):
        f.write(f"A-{i},Olena,+38050{i:07d}\n")
PY
  for i in $(seq 1 "$flows"); do
    printf 'source: {connector: csv, path: orders.csv, key: order_id, backlog: send}\nreceiver: {connector: 8x8, action: send_sms, account: sms}\nmap: {destination: "{{phone}}", text: "Hi {{name}} from flow %d"}\ndelivery: {concurrency: 4}\n' "$i" >"$1/flows/f$i.yaml"
  done
}

measure() { # count [alone]
  local count=$1 schema="mix_$RANDOM$RANDOM" apis=() pids=() mode=(--cluster)
  local state=(--state "$pg?schema=$schema")
  [ "${2:-}" = alone ] && mode=()
  [ "${2:-}" = embedded ] && mode=() && state=()
  for n in $(seq 1 "$count"); do
    local dir="$work/n$count-$n" port=$(( 20000 + RANDOM % 20000 ))
    setup "$dir"
    "$bin" daemon --flows "$dir/flows" --listen "127.0.0.1:$port" "${mode[@]}" ${mode[@]:+--node "n$n"} \
      "${state[@]}" >"$dir/daemon.log" 2>&1 &
    pids+=($!)
    until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.05; done
    apis+=("http://127.0.0.1:$port")
  done
  local start end runs=()
  start=$(date +%s.%N)
  for i in $(seq 1 "$flows"); do
    curl -sf -X POST "${apis[$(( (i - 1) % count ))]}/api/flows/f$i/run" >/dev/null &
    runs+=($!)
  done
  wait "${runs[@]}"
  end=$(date +%s.%N)
  local per_node
  per_node=$(for i in $(seq 1 "$flows"); do curl -sf "${apis[0]}/api/flows/f$i/runs?limit=1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"][0]; print(r.get("node"), r["counts"]["sent"])'; done | sort | awk '{s[$1]+=$2} END {for (n in s) printf "%s:%d ", n, s[n]}')
  awk -v a="$start" -v b="$end" -v n="$count" -v r="$((rows * flows))" -v p="$per_node" \
    -v m="${2:-cluster}" 'BEGIN { printf "%d node(s), %s: %d rows in %.2f s = %.0f rows/s (sent per node: %s)\n", n, m, r, b - a, r / (b - a), p }'
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  psql "$pg" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
}

echo "$flows flows x $rows rows, concurrency 4 each, stand-in answering at once"
measure 1 embedded
measure 1 alone
measure 1
measure "$nodes"
