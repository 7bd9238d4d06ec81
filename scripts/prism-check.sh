#!/usr/bin/env bash
# Run the quickstart flow against Prism serving 8x8's own OpenAPI spec with --errors:
# Prism answers any request that breaks the spec with an error (and logs a violation),
# so every row must be sent and the log must hold no violation.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
spec="${SPEC_8X8:-$root/../shared/specs/8x8-sms-api.openapi.json}"
port="${PRISM_PORT:-}"
if [ -z "$port" ]; then
  # the first free port from 4010 on
  for candidate in $(seq 4010 4099); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
  done
fi

if [ ! -f "$spec" ]; then
  echo "prism-check: no spec at $spec (set SPEC_8X8)" >&2
  exit 1
fi
if ! command -v npx >/dev/null 2>&1; then
  echo "prism-check: installing Node.js (npx) from the system's packages" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi

work="$(mktemp -d)"
prism_pid=""
cleanup() {
  # Prism runs in its own process group (npx starts node as a child): stop them all.
  [ -n "$prism_pid" ] && kill -- "-$prism_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

setsid npx --yes @stoplight/prism-cli@5.16.0 mock --errors -p "$port" "$spec" >"$work/prism.log" 2>&1 &
prism_pid=$!
for _ in $(seq 1 360); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$prism_pid" 2>/dev/null; then cat "$work/prism.log" >&2; exit 1; fi
  sleep 0.5
done

cargo build --quiet
cp -r "$root/examples/quickstart" "$work/flows"
status=0
SWITCHBOARD_SANDBOX_URL="http://127.0.0.1:$port" EIGHTX8_API_KEY="prism-check-key" \
  "$root/target/debug/switchboard" run order-sms --flows "$work/flows" --state "$work/state" || status=$?

violations="$(grep -ci "violation" "$work/prism.log" || true)"
requests="$(grep -c "Request received" "$work/prism.log" || true)"
echo "prism-check: $requests request(s) reached Prism, $violations violation(s) logged"
if [ "$status" -ne 0 ] || [ "$violations" -ne 0 ]; then
  cat "$work/prism.log" >&2
  exit 1
fi
