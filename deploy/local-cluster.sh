#!/usr/bin/env bash
# A real multi-process Ray cluster on one machine, on 127.0.0.1 only: a head (no work
# placed on it) and two worker nodes, each with its own resources and node-manager port
# so each can be found and killed by PID. Then (optionally) `xlwatch serve` joins it.
#
#   deploy/local-cluster.sh start  [STATE_DIR]   # prints the state file (JSON) it wrote
#   deploy/local-cluster.sh serve  [STATE_DIR] -- [xlwatch serve args...]
#   deploy/local-cluster.sh kill-node NAME [STATE_DIR]   # NAME: node-a | node-b
#   deploy/local-cluster.sh stop   [STATE_DIR]   # stops everything it started, by PID
set -euo pipefail
cmd="${1:?usage: local-cluster.sh start|serve|kill-node|stop [STATE_DIR]}"; shift
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
RAY="${RAY:-$(dirname "$0")/../.venv/bin/ray}"
XLWATCH="${XLWATCH:-$(dirname "$0")/../.venv/bin/xlwatch}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids_on_port() { # PIDs of the raylet listening on a node-manager port, and its children
  local port="$1" raylet
  raylet=$(pgrep -f -- "raylet.*--node_manager_port=${port}( |$)" || true)
  for p in $raylet; do echo "$p"; pgrep -P "$p" || true; done
}

case "$cmd" in
start)
  state="${1:-$(mktemp -d /tmp/xlwatch-cluster.XXXXXX)}"; mkdir -p "$state"
  head_port=$(free_port); nm_a=$(free_port); nm_b=$(free_port)
  "$RAY" start --head --node-ip-address=127.0.0.1 --port="$head_port" --num-cpus=0 \
      --include-dashboard=false --disable-usage-stats \
      --resources='{"xlwatch_head": 1}' >"$state/head.log" 2>&1
  "$RAY" start --address="127.0.0.1:$head_port" --node-ip-address=127.0.0.1 \
      --node-manager-port="$nm_a" --num-cpus=2 --resources='{"node-a": 1}' >"$state/node-a.log" 2>&1
  "$RAY" start --address="127.0.0.1:$head_port" --node-ip-address=127.0.0.1 \
      --node-manager-port="$nm_b" --num-cpus=2 --resources='{"node-b": 1}' >"$state/node-b.log" 2>&1
  cat >"$state/cluster.json" <<JSON
{"address": "127.0.0.1:$head_port", "node_manager_ports": {"node-a": $nm_a, "node-b": $nm_b}, "state_dir": "$state"}
JSON
  echo "$state/cluster.json"
  ;;
serve)
  state="${1:?state dir}"; shift; [ "${1:-}" = "--" ] && shift
  address=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$state/cluster.json")
  setsid "$XLWATCH" serve --ray-address "$address" "$@" >"$state/serve.log" 2>&1 &
  echo $! >"$state/serve.pid"
  echo "$state/serve.pid"
  ;;
kill-node)
  name="${1:?node-a|node-b}"; state="${2:?state dir}"
  port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["node_manager_ports"][sys.argv[2]])' "$state/cluster.json" "$name")
  pids=$(pids_on_port "$port")
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  echo "$pids" | tr '\n' ' '; echo
  ;;
stop)
  state="${1:?state dir}"
  if [ -f "$state/serve.pid" ]; then kill -TERM "$(cat "$state/serve.pid")" 2>/dev/null || true; sleep 2; kill -9 "$(cat "$state/serve.pid")" 2>/dev/null || true; fi
  "$RAY" stop --force >/dev/null 2>&1 || true
  ;;
*) echo "unknown command: $cmd" >&2; exit 2 ;;
esac
