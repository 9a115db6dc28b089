#!/bin/sh
# Print the cache directory (relative to the repo root) for the LeRobot reference outputs:
#   .cache/reference/lerobot-<version>-<first 12 hex of sha256(key)>
# key = LeRobot version, case list, sha256 of scripts/lerobot_reference{,_diffusion}.py (which hold the configs
# and seeds) and sha256 of the reference venv's pinned versions (torch etc.).
# Usage: scripts/reference_cache.sh [CASES]   (CASES: comma list; default $PARITY_CASES or all cases)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
lerobot_version=${PARITY_LEROBOT_VERSION:-0.4.4}
cases=${1:-${PARITY_CASES:-aloha,multicam_prenorm,ensemble,novae_quantiles,resnet50_dilation,env_only}}
script="$root/scripts/lerobot_reference.py"
constraints="$root/mk/parity-lerobot-$lerobot_version.constraints.txt"
sha() { sha256sum "$1" | cut -d' ' -f1; }
key=$(
  {
    printf 'lerobot=%s\n' "$lerobot_version"
    printf 'cases=%s\n' "$cases"
    printf 'script=%s\n' "$(sha "$script")"
    printf 'diffusion=%s\n' "$(sha "$root/scripts/lerobot_reference_diffusion.py")"
    if [ -f "$constraints" ]; then printf 'constraints=%s\n' "$(sha "$constraints")"; fi
  } | sha256sum | cut -c1-12
)
printf '.cache/reference/lerobot-%s-%s\n' "$lerobot_version" "$key"
