#!/usr/bin/env bash
# Builds the tilted-face shards of configs/realfaces_stage10.json: the LFW photos and the portraits
# rotated in-plane by 5-40 degrees (prepare_data/rotate_photos.py), labelled by the YuNet teacher
# on the rotated pixels, as tiles of 3,000 more mosaics (half of them with the mined hard negatives).
# Needs the labels and negatives of build_realfaces.sh and build_hard_negatives.sh (run them first).
# Usage: prepare_data/build_rotated_faces.sh REALFACES_DIR [OUT_DIR]   (OUT_DIR default: data/realfaces)
# The shards go to OUT_DIR/shards/rotated, outside the glob of stages 1-9.
set -euo pipefail
R=${1:?usage: $0 REALFACES_DIR [OUT_DIR]}
OUT=${2:-data/realfaces}
L=$OUT/labels
ROT=$OUT/rotated
cd "$(dirname "$0")/.."
py() { python3 "$@"; }

# 1. Rotated copies (seeded by file name; resumable), labelled by the teacher.
for set in lfw portraits; do
  py prepare_data/rotate_photos.py --image_dir "$R/$set" --output_dir "$ROT/$set" --min_angle 5 --max_angle 40 --seed 0
  py prepare_data/label_with_teacher.py --image_dir "$ROT/$set" --output_dir "$L/rotated_$set"
done

# 2. Mosaics as in build_realfaces.sh (seed 3) with rotated tiles; half carry mined hard negatives.
py prepare_data/make_mosaics.py --output_dir "$OUT/mosaics_rotated" --num_images 3000 --size 640 --seed 3 \
  --negatives "$OUT/negatives" --negative_fraction 0.5 \
  --tiles "$ROT/lfw:$L/rotated_lfw:1.0" --tiles "$ROT/portraits:$L/rotated_portraits:1.0" \
  --scenes "$R/helmet_scenes/images:$L/helmet_scenes:1.0" --scenes "$R/mask_scenes/images:$L/mask_scenes:0.5"

# 3. Shards (a folder with shards.json is complete and kept).
[ -e "$OUT/shards/rotated/mosaics_rotated/shards.json" ] && echo "kept: $OUT/shards/rotated/mosaics_rotated" || \
py create_tfrecords.py --image_dir "$OUT/mosaics_rotated/images" --annotations_dir "$OUT/mosaics_rotated/annotations" \
  --output "$OUT/shards/rotated/mosaics_rotated" --num_shards 12 --overwrite
