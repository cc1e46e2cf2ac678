#!/usr/bin/env bash
# Builds the extra shards of configs/realfaces_stage8.json: 3,000 mosaics of small faces (12-128 px,
# more tiles per mosaic), half of them with hard negatives mined by a second detector (stage 7's).
# Needs the labels of prepare_data/build_realfaces.sh.
# Usage: prepare_data/build_small_face_mosaics.sh REALFACES_DIR MODEL_PB [OUT_DIR]   (OUT_DIR default: data/realfaces)
# The shards go to OUT_DIR/shards/small, outside the globs of stages 1-7 (shards/train*, shards/[th]*).
set -euo pipefail
R=${1:?usage: $0 REALFACES_DIR MODEL_PB [OUT_DIR]}
MODEL=${2:?usage: $0 REALFACES_DIR MODEL_PB [OUT_DIR]}
OUT=${3:-data/realfaces}
L=$OUT/labels
cd "$(dirname "$0")/.."
py() { python3 "$@"; }

# 1. Mine again, with the given (later) detector: the same checks as build_hard_negatives.sh.
[ -e "$OUT/negatives_stage7/negatives.json" ] && echo "kept: $OUT/negatives_stage7" || \
py prepare_data/mine_negatives.py --model "$MODEL" --output_dir "$OUT/negatives_stage7" --min_score 0.3 --margin 0.1 \
  --sources "$R/helmet_scenes/images:$L/helmet_scenes" --sources "$R/mask_scenes/images:$L/mask_scenes" \
  --sources "$R/lfw:$L/lfw" --sources "$R/portraits:$L/portraits"

# 2. Small-face mosaics (seed 3): faces 12-128 px, grids of 3-5 tiles a side favoured.
py prepare_data/make_mosaics.py --output_dir "$OUT/mosaics_small" --num_images 3000 --size 640 --seed 3 \
  --face_sizes 12,128 --grid_weights 1,1,2,3,3 --negatives "$OUT/negatives_stage7" --negative_fraction 0.5 \
  --tiles "$R/lfw:$L/lfw:1.0" --tiles "$R/portraits:$L/portraits:1.0" --tiles "$R/ffhq_masked/images:$L/ffhq_masked:0.3" \
  --scenes "$R/helmet_scenes/images:$L/helmet_scenes:1.0" --scenes "$R/mask_scenes/images:$L/mask_scenes:0.5"

# 3. Shards (a folder with shards.json is complete and kept).
[ -e "$OUT/shards/small/mosaics_small/shards.json" ] && echo "kept: $OUT/shards/small/mosaics_small" || \
py create_tfrecords.py --image_dir "$OUT/mosaics_small/images" --annotations_dir "$OUT/mosaics_small/annotations" \
  --output "$OUT/shards/small/mosaics_small" --num_shards 12 --overwrite
