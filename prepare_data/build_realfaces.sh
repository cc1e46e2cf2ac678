#!/usr/bin/env bash
# Builds the training and held-out shards of configs/realfaces.json from the real-photo
# collection (folder layout in docs/training.md).
# Usage: prepare_data/build_realfaces.sh REALFACES_DIR [OUT_DIR]   (OUT_DIR default: data/realfaces)
#        ALIGN_HUMAN_BOXES=0 prepare_data/build_realfaces.sh ...   keeps the human VOC boxes as drawn
#          (default 1: they are brought to the teacher's box convention by prepare_data/align_boxes.py,
#          so every label follows one convention, the teacher's, which the upstream WIDER model shares)
# 10% of the photos of every set are held out (prepare_data/split_holdout.py, fixed by file name):
# no training shard and no training mosaic uses them; shards/holdout/ (those photos, and mosaics
# made only from them) is the validation set recipes are chosen on. FDDB goes to shards/fddb/.
# Re-running is cheap: labelling and mosaics skip what exists; complete shard folders (with
# shards.json) are kept and reported, incomplete ones are written again.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;; esac  # the comments above
set -euo pipefail
R=${1:?usage: $0 REALFACES_DIR [OUT_DIR]}
OUT=${2:-data/realfaces}
L=$OUT/labels
cd "$(dirname "$0")/.."
py() { python3 "$@"; }

# 1. Labels: human VOC boxes where they exist, the YuNet teacher elsewhere.
if [ "${ALIGN_HUMAN_BOXES:-1}" = 1 ]; then
  # The human boxes brought to the teacher's convention (prepare_data/align_boxes.py): the
  # drawn boxes go to $L/human/, the aligned ones take their place, so every later step is unchanged.
  for set in mask_scenes ffhq_masked; do
    py prepare_data/prepare_voc.py --annotations_dir "$R/$set/annotations" --image_dir "$R/$set/images" --output_dir "$L/human/$set"
    py prepare_data/label_with_teacher.py --image_dir "$R/$set/images" --output_dir "$L/teacher/$set"
    py prepare_data/align_boxes.py --annotations_dir "$L/human/$set" --teacher_dir "$L/teacher/$set" --output_dir "$L/$set"
  done
else
  py prepare_data/prepare_voc.py --annotations_dir "$R/mask_scenes/annotations" --image_dir "$R/mask_scenes/images" --output_dir "$L/mask_scenes"
  py prepare_data/prepare_voc.py --annotations_dir "$R/ffhq_masked/annotations" --image_dir "$R/ffhq_masked/images" --output_dir "$L/ffhq_masked"
fi
py prepare_data/prepare_voc.py --annotations_dir "$R/helmet_scenes/annotations" --image_dir "$R/helmet_scenes/images" --output_dir "$L/helmet_heads" --classes none --ignore_classes head,helmet
py prepare_data/label_with_teacher.py --image_dir "$R/lfw" --output_dir "$L/lfw"
py prepare_data/label_with_teacher.py --image_dir "$R/portraits" --output_dir "$L/portraits"
py prepare_data/label_with_teacher.py --image_dir "$R/helmet_scenes/images" --output_dir "$L/helmet_scenes" --extra_ignore "$L/helmet_heads"

# 2. The fixed held-out split: $OUT/split/train/SET and $OUT/split/holdout/SET.
T=$OUT/split/train
H=$OUT/split/holdout
for set in lfw portraits ffhq_masked mask_scenes helmet_scenes; do
  py prepare_data/split_holdout.py --annotations_dir "$L/$set" --train_dir "$T/$set" --holdout_dir "$H/$set"
done

# 3. Mosaics: LFW, portrait and masked-FFHQ tiles on real-scene or plain canvases, each from one part only.
mosaics() {  # OUT_DIR LABELS_ROOT NUM SEED [extra make_mosaics.py flags]
  local dir=$1 labels=$2 num=$3 seed=$4; shift 4
  py prepare_data/make_mosaics.py --output_dir "$dir" --num_images "$num" --size 640 --seed "$seed" "$@" \
    --tiles "$R/lfw:$labels/lfw:1.0" --tiles "$R/portraits:$labels/portraits:1.0" --tiles "$R/ffhq_masked/images:$labels/ffhq_masked:0.3" \
    --scenes "$R/helmet_scenes/images:$labels/helmet_scenes:1.0" --scenes "$R/mask_scenes/images:$labels/mask_scenes:0.5"
}
mosaics "$OUT/mosaics" "$T" 5000 0
# The same with random strings drawn away from the faces (hard negatives: letters and logos); their
# shards go to shards/train_text, outside realfaces.json's glob (add shards/train_text/*/shard-*.tfrecords to use them).
mosaics "$OUT/mosaics_text" "$T" 3000 1 --text_fraction 1.0
mosaics "$OUT/holdout_mosaics" "$H" 400 2

# 4. Shards: mosaics, and the scenes as they are; the held-out part; FDDB folds 01-05 (the report set).
# A folder with shards.json is complete and kept; one without it (an interrupted or older run) is rewritten.
shards() { [ -e "$3/shards.json" ] && { echo "kept: $3"; return; }; py create_tfrecords.py --image_dir "$1" --annotations_dir "$2" --output "$3" --num_shards "$4" --overwrite; }
shards "$OUT/mosaics/images" "$OUT/mosaics/annotations" "$OUT/shards/train/mosaics" 20
shards "$OUT/mosaics_text/images" "$OUT/mosaics_text/annotations" "$OUT/shards/train_text/mosaics_text" 12
shards "$R/mask_scenes/images" "$T/mask_scenes" "$OUT/shards/train/mask_scenes" 4
shards "$R/helmet_scenes/images" "$T/helmet_scenes" "$OUT/shards/train/helmet_scenes" 8
shards "$R/ffhq_masked/images" "$T/ffhq_masked" "$OUT/shards/train/ffhq_masked" 2
shards "$OUT/holdout_mosaics/images" "$OUT/holdout_mosaics/annotations" "$OUT/shards/holdout/mosaics" 1
shards "$R/mask_scenes/images" "$H/mask_scenes" "$OUT/shards/holdout/mask_scenes" 1
shards "$R/helmet_scenes/images" "$H/helmet_scenes" "$OUT/shards/holdout/helmet_scenes" 1
shards "$R/ffhq_masked/images" "$H/ffhq_masked" "$OUT/shards/holdout/ffhq_masked" 1
shards "$R/lfw" "$H/lfw" "$OUT/shards/holdout/lfw" 1  # news photos, FDDB's own source
shards "$R/portraits" "$H/portraits" "$OUT/shards/holdout/portraits" 1
[ -d "$OUT/fddb_val" ] || py prepare_data/prepare_fddb.py --fddb_dir "$R/fddb_val" --output_dir "$OUT/fddb_val" --folds 1-5
shards "$OUT/fddb_val/images" "$OUT/fddb_val/annotations" "$OUT/shards/fddb" 1
