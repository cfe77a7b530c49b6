#!/usr/bin/env bash
# Stops exactly the processes cluster/up.sh started (the real node's and kwokctl's pid files)
# and removes the state.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster/node/env.sh
source "$ROOT/cluster/node/env.sh"

[[ -d $STATE ]] || { echo "no local cluster to stop"; exit 0; }

# The operator `make demo` left running in the background.
if [[ -f $STATE/operator.pid ]]; then
  pid=$(cat "$STATE/operator.pid")
  if grep -qa modeldeploy_operator "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" || true; fi
fi

"$ROOT/cluster/platform/down.sh" # the platform's host processes (cluster/platform/)
"$ROOT/cluster/node/down.sh"

# Every cluster in this checkout's kwok directory: normally just $CLUSTER_NAME, but one started
# under another name (an older checkout's fixed "modeldeploy", MODELDEPLOY_CLUSTER_NAME) must
# not keep running once its state is removed.
eval "$("$ROOT/cluster/build.sh" paths)"
pids=()
for dir in "$KWOK_WORKDIR"/clusters/*/; do
  dir=${dir%/}
  [[ -d $dir ]] || continue
  for f in "$dir"/pids/*.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    # Only a process whose command line points into this cluster's directory is ours; a stale
    # pid file (after a reboot) may name an unrelated process.
    if grep -qa "$dir" "/proc/$pid/cmdline" 2>/dev/null; then pids+=("$pid"); fi
  done
  if [[ -x $KWOKCTL ]]; then
    "$KWOKCTL" delete cluster --name "${dir##*/}" >/dev/null 2>&1 || true
  fi
done

# kwokctl signals the components and returns at once; wait for them, then force the stragglers.
for pid in "${pids[@]}"; do
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "process $pid did not stop; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
done
rm -rf "$STATE"
echo "local cluster stopped and removed"
