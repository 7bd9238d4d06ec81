#!/usr/bin/env bash
# The peers in the same run (BENCHMARKS.md §11): installs n8n and Node-RED (npm) and a
# Python aiohttp sender (pip) into a scratch folder, then runs the same 10,000-row
# CSV → 8x8 job through each of them and through Switchboard against the same stand-in,
# with the same harness (`switchboard-bench peers`: wall time from spawn until the
# stand-in has every row, peak memory of the process tree), and prints one table.
#
#   bench/peers/run.sh [RUNS] [ROWS]      # defaults: 3 runs of 10,000 rows
#
# Not part of CI: it downloads several hundred MB (n8n alone is ~1,700 packages). The
# scratch folder is kept between runs: PEERS_DIR (default ~/.cache/switchboard-peers).
# Needs Node.js 20.19+ (n8n 2.8.4, Node-RED 4.1.8) and Python 3 with venv.
set -euo pipefail

runs="${1:-3}"
rows="${2:-10000}"
here="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard-peers}"
mkdir -p "$dir"

install_npm() { # folder package version
    if [ ! -d "$dir/$1/node_modules/$2" ]; then
        echo "installing $2 $3 into $dir/$1 …"
        mkdir -p "$dir/$1"
        # n8n asks for xlsx as a tarball from cdn.sheetjs.com, outside the npm registry:
        # the registry's last xlsx stands in (the job reads a CSV; no XLSX is opened).
        cat > "$dir/$1/package.json" <<JSON
{"name": "switchboard-peer-$1", "private": true,
 "dependencies": {"$2": "$3"},
 "overrides": {"xlsx": "npm:xlsx@0.18.5"}}
JSON
        (cd "$dir/$1" && npm install --no-audit --no-fund --loglevel=error)
    fi
}
install_npm n8n n8n 2.8.4
install_npm nodered node-red 4.1.8
if [ ! -x "$dir/py/bin/python" ] || ! "$dir/py/bin/python" -c 'import aiohttp' 2>/dev/null; then
    echo "installing aiohttp into $dir/py …"
    python3 -m venv "$dir/py"
    "$dir/py/bin/pip" install --quiet aiohttp
fi

cd "$here"
cargo build --release --quiet -p switchboard -p bench
exec ./target/release/switchboard-bench peers --dir "$dir" --runs "$runs" --rows "$rows"
