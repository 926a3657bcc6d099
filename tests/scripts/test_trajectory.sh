#!/usr/bin/env bash
# CTest's `Trajectory`: qfae trains from the published code's initial weights on its batches and
# must follow its run step by step (Trajectory.FollowsTheReferenceRun in tests/train/). Rebuilds
# the fixture's two seeded timm backbones once (scripts/fixtures/make_trajectory_backbones.py,
# cached by the fixture's digests) and runs the test on them. Exit 77 (skipped) without torch and
# timm.
# Usage: test_trajectory.sh <repo root> <venv python> <qfae_tests binary>
#   QFAE_TRAJECTORY_FIXTURE  another fixture of the same format (default
#                            tests/fixtures/trajectory/public.safetensors)
#   QFAE_EXPORT_CACHE        where the backbones are cached (default ~/.cache/qfae/exports)
set -euo pipefail
root="$1" py="$2" tests="$3"
fixture="${QFAE_TRAJECTORY_FIXTURE:-$root/tests/fixtures/trajectory/public.safetensors}"
if [[ ! -f $fixture ]]; then
  echo "QFAE_TRAJECTORY_FIXTURE: '$fixture' does not exist" >&2
  exit 2
fi
if [[ ! -x $py ]] || ! "$py" -c "import torch, timm, safetensors" >/dev/null 2>&1; then
  echo "skipped: no Python environment with torch and timm at $py (bash scripts/install-torch.sh)"
  exit 77
fi
# The backbones depend on the recipe in the fixture's metadata and on the exporter: key the cache
# on both, so a changed export_backbone.py rebuilds them.
key=$("$py" - "$fixture" "$root/scripts/export_backbone.py" "$root/scripts/lib/qfae_vit.py" <<'PY'
import hashlib, json, sys
from safetensors import safe_open
meta = json.loads(safe_open(sys.argv[1], "pt").metadata()["trajectory_fixture"])
h = hashlib.sha256(json.dumps([meta["backbones"], meta["variant_config"]], sort_keys=True).encode())
for path in sys.argv[2:]:
    h.update(open(path, "rb").read())
print(h.hexdigest()[:16])
PY
)
cache="${QFAE_EXPORT_CACHE:-$HOME/.cache/qfae/exports}/trajectory-$key"
if [[ ! -f $cache/encoder.pt || ! -f $cache/perceptual.pt ]]; then
  mkdir -p "$(dirname "$cache")"
  tmp=$(mktemp -d "$cache.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  "$py" "$root/scripts/fixtures/make_trajectory_backbones.py" "$fixture" "$tmp"
  rm -rf "$cache"
  mv "$tmp" "$cache"
fi
# Debian's LibTorch 1.13 runs its OpenMP pool beside OpenBLAS's own threads; with OpenMP's default
# spinning wait they fight over the cores (3.6 s a step here, 1.5 s with a passive wait). The wait
# policy changes no number, only how long the 60 steps take.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
QFAE_TRAJECTORY_FIXTURE="$fixture" QFAE_TRAJECTORY_BACKBONES="$cache" \
  "$tests" --gtest_filter='Trajectory.*' | tee "$log"
if ! grep -q "PASSED.* 1 test" "$log" || grep -q "SKIPPED" "$log"; then
  echo "Trajectory.FollowsTheReferenceRun did not run and pass" >&2
  exit 1
fi
