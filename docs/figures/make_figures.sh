#!/usr/bin/env bash
# Redraw the README's figures into docs/figures/ (the explorer screenshots need Chromium and playwright).
#
#   bash docs/figures/make_figures.sh [DEMO_DIR]            (default: demo_out)
#   LAYOUT=1 bash docs/figures/make_figures.sh [DEMO_DIR]   also the two layout figures
#
# The problem-1 figures come from the demo's TRAINED tiny ViT (DEMO_DIR/run_a/best.pt, about 89%
# validation accuracy on the synthetic set), the problem-2 ones from its trained tiny captioner
# (DEMO_DIR/captioner/best.pt); when DEMO_DIR holds no demo, the demo runs first. LAYOUT=1 also
# draws, with RANDOM weights at the real sizes, ViT-L/16 at 384 (a 1.2 GB checkpoint in a temporary
# folder, about 3 GB of memory) and the published CATR architecture: they show the layout only.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
DEMO=${1:-demo_out}
PY=${PYTHON:-python3}
FIG=docs/figures
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[ -e "$DEMO/run_a/best.pt" ] || bash scripts/demo.sh "$DEMO"
CKPT=$DEMO/run_a/best.pt
# a striped triangle, a dotted star and a striped cross, three classes the model gets right
IMAGES=("$DEMO/data/val/13_1493.png" "$DEMO/data/val/33_1513.png" "$DEMO/data/val/22_1502.png")

for method in last rollout; do
    $PY p1_vis_attention.py --ckpt "$CKPT" --images "${IMAGES[@]}" --out_dir "$WORK/$method" \
        --method $method --device cpu
done
# layer 2 of 0..3: one head finds points on the shape while the others look at the background
$PY p1_vis_attention.py --ckpt "$CKPT" --images "${IMAGES[@]:0:2}" --out_dir "$WORK/heads" \
    --method heads --layer 2 --device cpu
$PY p1_vis_pos_embed.py --ckpt "$CKPT" --out "$WORK/pos_embed.png"
$PY p1_vis_attention.py --ckpt "$CKPT" --images "${IMAGES[@]}" --out_dir "$WORK/relevancy" \
    --method relevancy --device cpu
if [ ! -e "$DEMO/explanations.png" ]; then  # a demo made before it measured its maps
    $PY scripts/eval_explanations.py --ckpt "$CKPT" --img_dir "$DEMO/data/val" --device cpu --no_progress \
        --out_json "$DEMO/explanations.json" --out_png "$DEMO/explanations.png"
fi

# the explorer pages as a browser shows them: attention from a pinned patch, run a against run b with
# run a's scores; a pinned caption word
$PY p1_vis_attention.py --ckpt "$CKPT" --compare "$DEMO/run_b/best.pt" --images "${IMAGES[@]}" \
    --html "$WORK/attention_explorer.html" --scores "$DEMO/explanations.json" --device cpu
# problem 2: the demo's trained tiny captioner on its first three held-out scenes
SCENES=("$DEMO"/scenes/val/*.png)
$PY p2_vis_caption.py --images "${SCENES[@]:0:3}" --weights "$DEMO/captioner/best.pt" --out_dir "$WORK/caption" \
    --device cpu
$PY p2_vis_caption.py --images "${SCENES[0]}" --weights "$DEMO/captioner/best.pt" --html "$WORK/caption_explorer.html" \
    --beam 3 --scores "$DEMO/grounding.json" --device cpu
$PY scripts/dev/explorer_screenshots.py --vit "$WORK/attention_explorer.html" \
    --caption "$WORK/caption_explorer.html" --out_dir "$FIG"

if [ "${LAYOUT:-0}" = 1 ]; then
    $PY scripts/dev/make_readme_figure_inputs.py "$WORK/layout"
    $PY p1_vis_attention.py --ckpt "$WORK/layout/l16_random.pt" --images "$WORK/layout/pet.jpg" \
        --out_dir "$WORK/layout" --device cpu
    $PY p2_vis_caption.py --images "$WORK/layout/pet.jpg" --out_dir "$WORK/layout" --random_weights \
        --max_steps 6 --device cpu
fi

# Panels side by side (a row) or stacked, scaled to a README-friendly width, stored as 256-colour PNGs.
$PY - "$WORK" "$DEMO" "$FIG" <<'EOF'
import sys
from pathlib import Path
from PIL import Image

work, demo, fig = (Path(p) for p in sys.argv[1:])
stems = ["13_1493", "33_1513", "22_1502"]


def grid(rows):
    """rows: lists of image paths; each row's images side by side, the rows stacked."""
    rows = [[Image.open(p).convert("RGB") for p in row] for row in rows]
    width = max(sum(im.width for im in row) for row in rows)
    heights = [max(im.height for im in row) for row in rows]
    sheet = Image.new("RGB", (width, sum(heights)), "white")
    y = 0
    for row, height in zip(rows, heights):
        x = 0
        for im in row:
            sheet.paste(im, (x, y))
            x += im.width
        y += height
    return sheet


def save(image, name, width):
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(fig / name, optimize=True)
    print(f"wrote {fig / name} ({image.width}x{image.height}, {(fig / name).stat().st_size // 1024} kB)")


save(grid([[work / "last" / f"{s}_last.png", work / "rollout" / f"{s}_rollout.png"] for s in stems]),
     "demo_attention_last_rollout.png", 1600)
save(grid([[work / "heads" / f"{s}_heads.png" for s in stems[:2]]]), "demo_attention_heads.png", 1600)
save(grid([[work / "pos_embed.png"]]), "demo_pos_embed.png", 900)
save(grid([[demo / "runs_curves.png"]]), "demo_runs_curves.png", 1400)
save(grid([[demo / "confusion.png"]]), "demo_confusion.png", 1400)
save(grid([[work / "relevancy" / f"{s}_relevancy.png"] for s in stems]), "demo_relevancy.png", 900)
save(grid([[demo / "explanations.png"]]), "demo_explanations.png", 1400)
save(grid([[p] for p in sorted((work / "caption").glob("*.png"))]), "demo_caption.png", 1000)
if (work / "layout").is_dir():
    save(grid([[work / "layout" / "pet_last.png"]]), "p1_attention_last_L_16_384.png", 1323)
    save(grid([[work / "layout" / "pet.png"]]), "p2_caption_layout_random.png", 1600)
EOF
