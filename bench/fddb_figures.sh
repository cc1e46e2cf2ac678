#!/usr/bin/env bash
# The README's FDDB figures of a model, float32 and bfloat16 (FaceDetector precision), with the
# project's own predict_for_fddb.py + evaluate_fddb.py.
# Usage: bench/fddb_figures.sh FDDB_DIR [MODEL] [OUT_DIR]
#   FDDB_DIR: official layout (originalPics/, FDDB-folds/), e.g. the partial folds 01-05
#   MODEL: frozen graph (default model/facebox.pb); OUT_DIR: default result/fddb_figures
# Then the float32 boxes as ellipses (src/evaluation/box_to_ellipse.py, leave-one-fold-out),
# scored with the evaluator's -f 1.
# The budgets 47 and 100 false positives suit the partial FDDB of 133 images (47 ~ 1000 on all 2,845).
set -euo pipefail
cd "$(dirname "$0")/.."
FDDB=${1:?usage: $0 FDDB_DIR [MODEL] [OUT_DIR]}
MODEL=${2:-model/facebox.pb}
OUT=${3:-result/fddb_figures}
for precision in float32 bfloat16; do
  python3 predict_for_fddb.py --fddb_dir "$FDDB" --model "$MODEL" --output_dir "$OUT/$precision" \
      --precision "$precision" --overwrite >/dev/null
  echo "$precision: $(python3 evaluate_fddb.py -a "$OUT/$precision/ellipseList.txt" -d "$OUT/$precision/detections.txt" \
      -i "$FDDB/originalPics" -l "$OUT/$precision/faceList.txt" -r "$OUT/$precision/" --at_fp 47,100,1000 2>/dev/null)"
done
E="$OUT/float32_ellipses"
python3 -m src.evaluation.box_to_ellipse --predictions "$OUT/float32" --folds_dir "$FDDB/FDDB-folds" \
    --image_dir "$FDDB/originalPics" --output_dir "$E" --overwrite >/dev/null
echo "float32 as ellipses: $(python3 evaluate_fddb.py -f 1 -a "$E/ellipseList.txt" -d "$E/detections.txt" \
    -i "$FDDB/originalPics" -l "$E/faceList.txt" -r "$E/" --at_fp 47,100,1000 2>/dev/null)"
