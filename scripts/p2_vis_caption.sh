#!/usr/bin/env bash
# Problem 2: caption every image in IMG_DIR with CATR and draw each word's attention.
#
#   bash scripts/p2_vis_caption.sh IMG_DIR OUT_DIR
#
# Writes OUT_DIR/<name>.png per .jpg/.jpeg/.png file (bike.jpg -> bike.png) with the documented
# defaults: CATR v2 weights (downloaded once into the torch hub cache), the second-to-last decoder
# layer, mean over heads. Relative paths are taken from the folder the script is called from.
# Offline, set P2_WEIGHTS to a downloaded weight file to use it instead of the download.
# Set PYTHON to choose the interpreter (default: python3).
set -euo pipefail

if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then  # this header, as every script's --help
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
  exit 0
fi
if [[ $# -ne 2 ]]; then
  echo "usage: bash scripts/p2_vis_caption.sh IMG_DIR OUT_DIR" >&2
  exit 2
fi

# The repository, also when this script is called through a symbolic link.
ROOT="$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd)"
WEIGHTS=()
if [[ -n "${P2_WEIGHTS:-}" ]]; then
  WEIGHTS=(--weights="$P2_WEIGHTS")
fi
# --flag=VALUE: a path starting with '-' stays a value
exec "${PYTHON:-python3}" "$ROOT/p2_vis_caption.py" --img_dir="$1" --out_dir="$2" "${WEIGHTS[@]}"
