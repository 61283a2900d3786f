#!/usr/bin/env bash
# Create (or update) benchmarks/.venv-peers: Parry plus the peer libraries the
# benchmarks compare against (torchattacks, IBM ART, Foolbox 3), all on ONE torch.
#
#   bash benchmarks/setup_peers.sh            # idempotent; re-running is a no-op
#   PYTHON=python3.11 bash benchmarks/setup_peers.sh
#
# torch is installed first and pinned through a constraints file for every later
# step, so no peer can pull another torch build (a CUDA wheel is gigabytes).
# torchattacks declares torchvision as a dependency but never needs it for the
# attacks used here: it is installed with --no-deps and torchvision is NOT installed
# (it does not work beside this torch).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="$HERE/.venv-peers"
PYTHON="${PYTHON:-python3}"

TORCH_VERSION="2.13.0"
# Versions this benchmark was run with (see docs/benchmarks.md).
NUMPY="numpy==2.4.6"
SCIPY="scipy==1.17.1"
TQDM="tqdm==4.70.1"
REQUESTS="requests==2.34.2"
TORCHATTACKS="torchattacks==3.5.1"
ART="adversarial-robustness-toolbox==1.20.1"
SKLEARN="scikit-learn==1.9.1"       # ART dependency, pinned for reproducibility
FOOLBOX="foolbox==3.3.4"
EAGERPY="eagerpy==0.30.0"           # Foolbox dependency
GITPYTHON="GitPython==3.2.1"        # Foolbox dependency
PACKAGING="packaging==26.3"         # imported by ART 1.20, not declared

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'torch==%s\n' "$TORCH_VERSION" > "$CONSTRAINTS"

# 1. torch first (a CPU wheel where one is at hand), then numpy.
"${PIP[@]}" install -q -c "$CONSTRAINTS" "torch==$TORCH_VERSION"
"${PIP[@]}" install -q -c "$CONSTRAINTS" "$NUMPY"

# 2. Parry itself, editable (deps: torch, numpy, safetensors, click, tqdm).
"${PIP[@]}" install -q -c "$CONSTRAINTS" -e "$ROOT"

# 3. torchattacks without its declared torchvision dependency, plus what it imports.
"${PIP[@]}" install -q -c "$CONSTRAINTS" "$SCIPY" "$TQDM" "$REQUESTS"
"${PIP[@]}" install -q --no-deps "$TORCHATTACKS"

# 4. IBM ART (does not depend on torch) and Foolbox 3 (eagerpy, GitPython, ...).
"${PIP[@]}" install -q -c "$CONSTRAINTS" "$ART" "$SKLEARN" "$FOOLBOX" "$EAGERPY" "$GITPYTHON" "$PACKAGING"

# 5. Check: the one torch, no torchvision, every contender importable.
"$VENV/bin/python" - "$TORCH_VERSION" <<'EOF'
import importlib.util
import sys

import torch

want = sys.argv[1]
if torch.__version__.split("+")[0] != want:
    sys.exit(f"setup_peers: torch {torch.__version__} installed, expected {want}")
if importlib.util.find_spec("torchvision") is not None:
    sys.exit("setup_peers: torchvision is installed in the peer env; remove it")
import art, foolbox, parry, torchattacks  # noqa: E401,F401
print(f"peer env ready: torch {torch.__version__}, torchattacks {torchattacks.__version__}, "
      f"ART {art.__version__}, foolbox {foolbox.__version__}, parry {parry.__version__}")
EOF
