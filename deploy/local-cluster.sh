#!/usr/bin/env bash
# A real multi-process Ray cluster on one machine, on 127.0.0.1 only: a head (no CPUs, so
# no work is placed on it) and two worker nodes `a` and `b`. Each worker declares the
# custom resource `xlwatch_node_<name>` that pipeline/placement.py pins cameras with.
# Every process the script starts is recorded by PID in the state dir and only those are
# ever signalled: other Ray instances on the machine are never touched (no `ray stop`).
#
#   deploy/local-cluster.sh start  [STATE_DIR]          # prints the state file (JSON)
#   deploy/local-cluster.sh serve  STATE_DIR -- [xlwatch serve args...]   # prints serve.pid
#   deploy/local-cluster.sh kill-node NAME STATE_DIR    # NAME: a | b; prints the PIDs killed
#   deploy/local-cluster.sh stop   STATE_DIR            # serve, then every recorded PID
#
# Environment: PYTHON (default: .venv/bin/python beside the checkout, else python3),
# RAY (default: the `ray` next to PYTHON), XLWATCH (default: `xlwatch` on PATH, else the
# checkout's CLI run with PYTHON), NODE_CPUS (CPUs each worker node declares, default 1).
set -euo pipefail
cmd="${1:?usage: local-cluster.sh start|serve|kill-node|stop [STATE_DIR]}"; shift
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || command -v python3)}"
RAY="${RAY:-$( [ -x "$(dirname "$PYTHON")/ray" ] && echo "$(dirname "$PYTHON")/ray" || echo ray)}"
NODE_CPUS="${NODE_CPUS:-1}"
# Ray refuses `ray start --address` (joining) unless multi-node clusters are enabled, and
# with them enabled its worker gRPC servers and agents listen on every interface, not only
# on --node-ip-address. So the script runs only where loopback is the sole interface (a
# private network namespace: `unshare --net`, which the test uses), unless the operator
# says external binds are allowed on this machine (XLWATCH_ALLOW_EXTERNAL_BIND=1).
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1 RAY_USAGE_STATS_ENABLED=0
only_loopback() { ! ip -o addr show 2>/dev/null | awk '{print $2}' | grep -qv '^lo$'; }
if [ "$cmd" = start ] && [ "${XLWATCH_ALLOW_EXTERNAL_BIND:-0}" != 1 ] && ! only_loopback; then
  echo "refusing to start: multi-node Ray listens on every interface and this machine has" \
       "more than loopback. Run inside a private network namespace (sudo unshare --net --" \
       "bash -c 'ip link set lo up; ...') or set XLWATCH_ALLOW_EXTERNAL_BIND=1." >&2
  exit 2
fi
# Nodes and workers of a checkout (not a pip install) must import the project.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# A free loopback port that is none of Ray's default ports (dashboard agent 52365,
# dashboard 8265, client 10001, GCS 6379, worker ports 10002-19999): a node-manager port
# that lands on one of those makes `ray start` refuse the port layout.
free_port() { "$PYTHON" -c '
import socket
reserved = {6379, 8076, 8077, 8265, 10001, 52365, 62365} | set(range(10002, 20000))
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    if port not in reserved:
        print(port); break'; }
json_get() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: d=d[k]
print(" ".join(map(str, d)) if isinstance(d, list) else d)' "$@"; }
use_auth() { # token auth: the cluster's own token, never ~/.ray/auth_token
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$1/auth_token"
}
snapshot() { ps -eo pid= | sort; }
new_pids() { # PIDs that appeared since snapshot $1 and belong to this cluster's temp dir
  local before="$1" tmp="$2" p
  for p in $(comm -13 "$before" <(snapshot)); do
    if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "$tmp"; then
      echo "$p"; pgrep -P "$p" || true
    fi
  done | sort -u | tr '\n' ' '
}
start_node() { # name, then ray start args; records the node's PIDs in $state/<name>.pids
  local name="$1"; shift
  local rc=0
  snapshot >"$state/.before"
  timeout 120 "$RAY" start --node-ip-address=127.0.0.1 --temp-dir="$tmp" "$@" \
      >"$state/$name.log" 2>&1 || rc=$?
  new_pids "$state/.before" "$tmp" >"$state/$name.pids"
  if [ "$rc" != 0 ]; then # undo what this start left running, then give up
    echo "ray start ($name) failed ($rc); see $state/$name.log" >&2
    # shellcheck disable=SC2046
    kill_pids $(cat "$state"/*.pids) >/dev/null
    rm -rf "$tmp"
    exit 1
  fi
}
kill_pids() { # SIGKILL these PIDs and the current children of each (Ray workers)
  local p all=""
  for p in "$@"; do all="$all $p $(pgrep -P "$p" 2>/dev/null | tr '\n' ' ' || true)"; done
  # shellcheck disable=SC2086
  [ -n "${all// /}" ] && kill -9 $all 2>/dev/null || true
  echo $all
}

wait_gone() { # until these PIDs have exited (a zombie counts as gone), at most 30 s
  local p state
  for _ in $(seq 150); do
    local left=""
    for p in "$@"; do
      state=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || true)
      [ -n "$state" ] && [ "$state" != "Z" ] && left="$left $p"
    done
    [ -z "$left" ] && return 0
    sleep 0.2
  done
  echo "still running after SIGKILL:$left" >&2
}

case "$cmd" in
start)
  state="${1:-$(mktemp -d /tmp/xlwatch-cluster.XXXXXX)}"; mkdir -p "$state"
  state="$(cd "$state" && pwd)"
  # Ray's socket paths must stay under 107 bytes: a short temp dir, not the state dir.
  tmp="$(mktemp -d /tmp/xlr.XXXXXX)"
  umask 077; "$PYTHON" -c 'import secrets; print(secrets.token_hex(32))' >"$state/auth_token"
  use_auth "$state"
  head_port=$(free_port); nm_a=$(free_port); nm_b=$(free_port)
  start_node head --head --port="$head_port" --num-cpus=0 --include-dashboard=false \
      --disable-usage-stats --dashboard-port="$(free_port)" \
      --ray-client-server-port="$(free_port)" --resources='{"xlwatch_head": 1}'
  start_node node-a --address="127.0.0.1:$head_port" --node-manager-port="$nm_a" \
      --num-cpus="$NODE_CPUS" --resources='{"xlwatch_node_a": 1}' \
      --dashboard-agent-listen-port="$(free_port)" --metrics-export-port="$(free_port)"
  start_node node-b --address="127.0.0.1:$head_port" --node-manager-port="$nm_b" \
      --num-cpus="$NODE_CPUS" --resources='{"xlwatch_node_b": 1}' \
      --dashboard-agent-listen-port="$(free_port)" --metrics-export-port="$(free_port)"
  node_id() { # the Ray node id of a node: its raylet's --node_id flag
    local p
    for p in $(cat "$state/$1.pids"); do
      tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | sed -n 's/^--node_id=//p'
    done | head -n1
  }
  pids() { "$PYTHON" -c 'import json,sys; print(json.dumps([int(p) for p in open(sys.argv[1]).read().split()]))' "$state/$1.pids"; }
  cat >"$state/cluster.json" <<JSON
{"address": "127.0.0.1:$head_port", "temp_dir": "$tmp", "state_dir": "$state",
 "auth_token_path": "$state/auth_token",
 "head": {"node_id": "$(node_id head)", "pids": $(pids head)},
 "nodes": {"a": {"resource": "xlwatch_node_a", "node_manager_port": $nm_a, "node_id": "$(node_id node-a)", "pids": $(pids node-a)},
           "b": {"resource": "xlwatch_node_b", "node_manager_port": $nm_b, "node_id": "$(node_id node-b)", "pids": $(pids node-b)}}}
JSON
  echo "$state/cluster.json"
  ;;
serve)
  state="${1:?state dir}"; shift; [ "${1:-}" = "--" ] && shift
  use_auth "$state"
  address=$(json_get "$state/cluster.json" address)
  if [ -n "${XLWATCH:-}" ]; then set -- $XLWATCH serve --ray-address "$address" "$@"
  elif command -v xlwatch >/dev/null; then set -- xlwatch serve --ray-address "$address" "$@"
  else set -- "$PYTHON" -c 'from pipeline.app.cli import main; main()' serve --ray-address "$address" "$@"
  fi
  (cd "$ROOT" && exec setsid "$@" >"$state/serve.log" 2>&1 </dev/null) &
  echo $! >"$state/serve.pid"
  echo "$state/serve.pid"
  ;;
kill-node)
  name="${1:?a|b}"; name="${name#node-}"; state="${2:?state dir}"
  # shellcheck disable=SC2046
  kill_pids $(json_get "$state/cluster.json" nodes "$name" pids)
  ;;
stop)
  state="${1:?state dir}"
  if [ -f "$state/serve.pid" ]; then
    pid=$(cat "$state/serve.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  [ -f "$state/cluster.json" ] || exit 0
  # Workers first (with their Ray worker children), then the head.
  # shellcheck disable=SC2046
  killed=$(kill_pids $(json_get "$state/cluster.json" nodes a pids) \
                     $(json_get "$state/cluster.json" nodes b pids))
  # shellcheck disable=SC2046
  killed="$killed $(kill_pids $(json_get "$state/cluster.json" head pids))"
  # SIGKILL is asynchronous: return only once they are gone
  # shellcheck disable=SC2086
  wait_gone $killed
  tmp=$(json_get "$state/cluster.json" temp_dir)
  case "$tmp" in /tmp/xlr.*) rm -rf "$tmp" ;; esac
  ;;
*) echo "unknown command: $cmd" >&2; exit 2 ;;
esac
