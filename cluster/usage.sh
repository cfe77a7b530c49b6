#!/usr/bin/env bash
# Resident memory of each process of the running local control plane (for the README's figures).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=cluster/node/env.sh
source "$ROOT/cluster/node/env.sh"
[[ -d $CLUSTER_DIR/pids ]] || { echo "no local cluster running" >&2; exit 1; }
total=0
for f in "$CLUSTER_DIR"/pids/*.pid "$NODE_DIR"/pids/*.pid; do
  [[ -f $f ]] || continue
  kb=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$f")/status")
  total=$((total + kb))
  printf '%-26s %6d MB\n' "$(basename "$f" .pid)" $((kb / 1024))
done
printf '%-26s %6d MB\n' total $((total / 1024))
