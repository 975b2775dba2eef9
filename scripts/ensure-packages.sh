#!/usr/bin/env bash
# Installs the Debian packages in scripts/debian-packages.txt that are not installed yet, so that
# scripts/test.sh and scripts/demo.sh run on a bare Debian 12. Does nothing when every package is
# present (the usual case: nothing is asked, no root needed). Needs root or sudo otherwise.
#   GENIE_SKIP_APT=1   skip the check (a non-Debian system, or packages installed another way)
# Usage: scripts/ensure-packages.sh [tag]   (tag prefixes the messages, e.g. "test")
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-genie}
[ -n "${GENIE_SKIP_APT:-}" ] && exit 0
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "[$tag] dpkg-query not found: not a Debian system; install the equivalents of" \
       "scripts/debian-packages.txt yourself (GENIE_SKIP_APT=1 silences this)" >&2
  exit 0
fi
missing=()
for p in $(cat scripts/debian-packages.txt); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "[$tag] missing Debian packages: ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  SUDO=(sudo)
fi
echo "[$tag] installing missing Debian packages: ${missing[*]}" >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
