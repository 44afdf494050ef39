#!/usr/bin/env bash
# Problem 1 inference: predict a breed label (0..36) for every image in IMG_DIR.
#
#   bash scripts/p1_inference.sh IMG_DIR OUT_CSV [CKPT]
#
# Writes OUT_CSV with the header `filename,label` and one row per .jpg/.jpeg/.png file.
# The checkpoint is, in order: the third argument, $P1_CKPT, or checkpoints/p1_best.pt at the
# repository root. Relative paths are taken from the folder the script is called from.
# Set PYTHON to choose the interpreter (default: python3).
set -euo pipefail

if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then  # this header, as every script's --help
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
  exit 0
fi
if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: bash scripts/p1_inference.sh IMG_DIR OUT_CSV [CKPT]" >&2
  exit 2
fi

# The repository, also when this script is called through a symbolic link.
ROOT="$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd)"
CKPT="${3:-${P1_CKPT:-$ROOT/checkpoints/p1_best.pt}}"

if [[ ! -f "$CKPT" ]]; then
  echo "error: checkpoint not found: $CKPT. Get one by training (python p1_train.py ..., see README.md," \
       "'Problem 1') and copying RUN/best.pt to $ROOT/checkpoints/p1_best.pt, or pass its path as the" \
       "third argument or in P1_CKPT." >&2
  exit 2
fi

# --flag=VALUE: a path starting with '-' stays a value
exec "${PYTHON:-python3}" "$ROOT/p1_inference.py" --ckpt="$CKPT" --img_dir="$1" --out_csv="$2"
