#!/usr/bin/env bash
# Daemon at scale: N flow files (cron flows spread over the seconds of a minute, each
# reading a one-row CSV), served by one daemon against the built-in stand-in.
# Reports start-up time (process start to /healthz), resident memory, and how late the
# timer fired (median and worst of each flow's last scheduled start) after SECONDS.
# Usage: bench/daemon-scale.sh [N=1000] [SECONDS=90]
set -euo pipefail
n="${1:-1000}"
seconds="${2:-90}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SWITCHBOARD_BIN:-$root/target/release/switchboard}"
[ -x "$bin" ] || cargo build --release --quiet
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/flows"
printf 'order_id,name,phone\nA-1,Olena,+380501234567\n' >"$work/flows/orders.csv"
printf 'sms:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: bench\n  base_url: http://127.0.0.1:4611\n' >"$work/flows/accounts.yaml"
for i in $(seq 1 "$n"); do
  printf 'source: {connector: csv, path: orders.csv, key: order_id}\nreceiver: {connector: 8x8, action: send_sms, account: sms}\nmap: {destination: "{{phone}}", text: "Hi {{name}}"}\nschedule: {cron: "%d * * * * *"}\n' $((i % 60)) >"$work/flows/f$i.yaml"
done
"$bin" sandbox --listen 127.0.0.1:4611 --smtp 127.0.0.1:0 >/dev/null 2>&1 &
port=$(( 20000 + RANDOM % 20000 ))
start=$(date +%s.%N)
"$bin" daemon --flows "$work/flows" --listen "127.0.0.1:$port" >"$work/daemon.log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.02; done
up=$(date +%s.%N)
rss_start=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "flows: $n"
awk -v a="$start" -v b="$up" 'BEGIN { printf "start-up to /healthz: %.2f s\n", b - a }'
echo "resident memory after start-up: $((rss_start / 1024)) MiB"
sleep "$seconds"
rss_end=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "resident memory after ${seconds}s of runs: $((rss_end / 1024)) MiB"
curl -sf "http://127.0.0.1:$port/api/flows" | python3 -c '
import json, sys
lags = sorted(f["last_lag_ms"] for f in json.load(sys.stdin)["flows"] if f.get("last_lag_ms") is not None)
if lags:
    p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(f"timer lateness over {len(lags)} flows (last scheduled start): median {p(0.5)} ms, p99 {p(0.99)} ms, worst {lags[-1]} ms")
'
kill -TERM "$pid"; wait "$pid" || true
