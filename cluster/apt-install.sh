#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are not installed yet (the local
# cluster's real node and the image builds need some; so does CI). Quiet when nothing is missing.
#
#   cluster/apt-install.sh PACKAGE...
set -euo pipefail

missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0
[[ $(id -u) == 0 ]] || { echo "modeldeploy: missing Debian packages ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2; exit 1; }
log=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}/logs/apt-install.log
mkdir -p "$(dirname "$log")"
echo "installing the Debian packages ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "modeldeploy: installing ${missing[*]} failed (log: $log)" >&2
  exit 1
fi
