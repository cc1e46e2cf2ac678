#!/usr/bin/env bash
# The FDDB figures of a model: float32, bfloat16 and LiteRT (FaceDetector precision / backend), with the
# project's own predict_for_fddb.py + evaluate_fddb.py.
# Usage: bench/fddb_figures.sh FDDB_DIR [MODEL] [OUT_DIR]
#   FDDB_DIR: official layout (originalPics/, FDDB-folds/), e.g. the partial folds 01-05
#   MODEL: frozen graph (default model/facebox.pb); OUT_DIR: default result/fddb_figures
# Then the float32 boxes as ellipses (src/evaluation/box_to_ellipse.py, leave-one-fold-out),
# scored with the evaluator's -f 1.
# The budgets 47 and 100 false positives suit the partial FDDB of 133 images (47 ~ 1000 on all 2,845).
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;; esac  # the comments above
set -euo pipefail
cd "$(dirname "$0")/.."
FDDB=${1:?usage: $0 FDDB_DIR [MODEL] [OUT_DIR]}
MODEL=${2:-model/facebox.pb}
OUT=${3:-result/fddb_figures}
# litert: the network from the .tflite beside MODEL (create_pb.py --tflite) run by LiteRT, float32.
for run in float32 bfloat16 litert; do
  case $run in litert) options="--precision float32 --backend litert" ;; *) options="--precision $run --backend tensorflow" ;; esac
  python3 predict_for_fddb.py --fddb_dir "$FDDB" --model "$MODEL" --output_dir "$OUT/$run" $options --overwrite >/dev/null
  echo "$run: $(python3 evaluate_fddb.py -a "$OUT/$run/ellipseList.txt" -d "$OUT/$run/detections.txt" \
      -i "$FDDB/originalPics" -l "$OUT/$run/faceList.txt" -r "$OUT/$run/" --at_fp 47,100,1000 --overwrite 2>/dev/null)"
done
# Whether LiteRT's detections are the frozen graph's: the same count and boxes, scores to float rounding.
python3 - "$OUT/float32/detections.txt" "$OUT/litert/detections.txt" <<'PY'
import sys
import numpy as np
from src.datasets.fddb_format import read_detections
(a, b), MIN_SCORE = [dict(read_detections(p)) for p in sys.argv[1:]], 0.3
worst, count, same = 0.0, 0, a.keys() == b.keys()
for name in a:
    x, y = (d[d[:, 4] >= MIN_SCORE] for d in (a[name], b[name]))
    if len(x) != len(y):
        same = False
        continue
    x, y = x[np.lexsort(x.T[::-1])], y[np.lexsort(y.T[::-1])]  # order-free: near-tied scores may swap
    worst, count = max(worst, float(np.abs(x - y).max(initial=0.0))), count + len(x)
print(f"litert vs float32, detections scoring >= {MIN_SCORE}: {'the same' if same else 'DIFFERENT'} "
      f"({count} of them; largest difference {worst:.1e} px or score)")
PY
E="$OUT/float32_ellipses"
python3 -m src.evaluation.box_to_ellipse --predictions "$OUT/float32" --folds_dir "$FDDB/FDDB-folds" \
    --image_dir "$FDDB/originalPics" --output_dir "$E" --overwrite >/dev/null
echo "float32 as ellipses: $(python3 evaluate_fddb.py -f 1 -a "$E/ellipseList.txt" -d "$E/detections.txt" \
    -i "$FDDB/originalPics" -l "$E/faceList.txt" -r "$E/" --at_fp 47,100,1000 --overwrite 2>/dev/null)"
