#!/bin/sh
# Print the cache directory (relative to the repo root) for the LeRobot reference outputs:
#   .cache/reference/lerobot-<version>-<first 12 hex of sha256(key)>
# key = LeRobot version, case list, sha256 of every source the reference scripts run (scripts/lerobot_reference.py
# and lerobot_reference_diffusion.py and the modules they import, which hold the configs, seeds and draws:
# tests/test_reference_sources.py keeps this list complete) and sha256 of the reference venv's pinned versions.
# Usage: scripts/reference_cache.sh [CASES]   (CASES: comma list; default $PARITY_CASES or all cases)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
lerobot_version=${PARITY_LEROBOT_VERSION:-0.4.4}
cases=${1:-${PARITY_CASES:-aloha,multicam_prenorm,ensemble,novae_quantiles,resnet50_dilation,env_only}}
sources="scripts/lerobot_reference.py scripts/lerobot_reference_diffusion.py scripts/reference_act_cases.py
scripts/reference_common.py"
for f in $sources; do [ -f "$root/$f" ] || { echo "reference_cache.sh: $f is missing" >&2; exit 1; }; done
constraints="$root/mk/parity-lerobot-$lerobot_version.constraints.txt"
sha() { sha256sum "$1" | cut -d' ' -f1; }
key=$(
  {
    printf 'lerobot=%s\n' "$lerobot_version"
    printf 'cases=%s\n' "$cases"
    for f in $sources; do printf '%s=%s\n' "$f" "$(sha "$root/$f")"; done
    if [ -f "$constraints" ]; then printf 'constraints=%s\n' "$(sha "$constraints")"; fi
  } | sha256sum | cut -c1-12
)
printf '.cache/reference/lerobot-%s-%s\n' "$lerobot_version" "$key"
