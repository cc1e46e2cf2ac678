"""Latency of the FaceBoxes inference path (network + decode + NMS) at batch 1.

Prints, for 1024x768 and 640x480, the median and minimum latency after warm-up, the network's
FLOPs at that size (multiply-add = 2, convolutions incl. heads) and the achieved GFLOP/s, for:
  - ours: the frozen graph that save.py + create_pb.py write (batch norm folded into the
    kernels, one fused 1x1 conv per inception, class heads reduced to one logit difference, one
    batched NMS op), with the network in float32 and in bfloat16;
  - FaceDetector on that frozen graph (what start.py and notebooks run: numpy in, pixel boxes
    out) with precision='float32' and precision='auto' (bfloat16 where the CPU has native
    bfloat16, see face_detector.py); the ratio to the reference is printed;
  - FaceDetector with backend='litert' ("FD litert"): the network from the .tflite of that
    frozen graph (create_pb.py --tflite) run by LiteRT's XNNPACK in float32, decoding and NMS
    by the graph in TensorFlow: what 'auto' runs on CPUs without native bfloat16;
  - reference: the upstream's inference graph rebuilt in TF1 style (tf.compat.v1 graph mode,
    unfolded batch norm, CReLU by concat, per-image tf.map_fn NMS with v1 control flow), run in
    a Session. Same weights, so the same boxes.

Weights and images: with --weights (an upstream-format checkpoint, default the shipped model's
model/facebox_weights.ckpt, the weights of model/facebox.pb) every path runs those weights on
real photos (bench_detector.py's astronaut + Grace Hopper image at each size), so NMS sees what
a user's photo gives it. With --weights random (or no shipped weights) the model has seeded
random weights with boosted class biases and the images are noise, so NMS keeps all 200 boxes.

Thresholds: every graph runs NMS with the upstream's score threshold (0.05), and each path
returns the boxes scoring above --score_threshold (default 0.5, FaceDetector's default and the
upstream FaceDetector's): the upstream graph and our Session.run paths filter their outputs in
numpy as the upstream's FaceDetector does; FaceDetector leaves the boxes at or below it out of
NMS on every backend (the same boxes above it). --score_threshold 0.05 times NMS over every
candidate.

The first lines name the CPU and its flags. On a CPU with AVX-512, bench/as_avx2_cpu.sh runs
this as on an AVX2-only CPU: every library then sees CPUID and /proc/cpuinfo without AVX-512,
AMX or VNNI and dispatches as there. (ONEDNN_MAX_CPU_ISA=AVX2 limits oneDNN only, a cruder
approximation: XNNPACK and TensorFlow's own checks still see AVX-512.) Without native bfloat16
the bfloat16 path is not run.

Example:
    python bench/bench_model.py --runs 30
    bench/as_avx2_cpu.sh python bench/bench_model.py --runs 30 --only
    python bench/bench_model.py --runs 30 --weights random
    python bench/bench_model.py --runs 40 --only
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src import anchor_generator, box_utils, export, nms, tflite_export  # noqa: E402
from src.detector import FaceBoxes  # noqa: E402
from src.atomic_io import write_text_atomic  # noqa: E402
from src.upstream_checkpoint import load_upstream_checkpoint  # noqa: E402
from bench_detector import make_test_image  # noqa: E402
from bench_conv1 import cpu_description, time_interleaved  # noqa: E402

SHIPPED_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "model", "facebox_weights.ckpt")

SIZES = ((768, 1024), (480, 640))  # (height, width)
# ONEDNN_MAX_CPU_ISA values without bfloat16 instructions (oneDNN's names).
NO_BFLOAT16_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI")


def conv_flops(model, height, width):
    """Multiply-add FLOPs (x2) of every convolution at a padded input size."""
    h, w = anchor_generator.padded_size(height, width)
    fe = model.feature_extractor
    total = 0

    def conv(layer_kernel, out_h, out_w):
        kh, kw, cin, cout = layer_kernel.shape
        return 2 * out_h * out_w * kh * kw * cin * cout

    total += conv(fe.conv1.kernel, h // 4, w // 4)
    total += conv(fe.conv2.kernel, h // 16, w // 16)
    for inception in fe.inceptions:
        total += sum(conv(layer.kernel, h // 32, w // 32) for layer in inception.layers)
    total += conv(fe.conv3_1.kernel, h // 32, w // 32) + conv(fe.conv3_2.kernel, h // 64, w // 64)
    total += conv(fe.conv4_1.kernel, h // 64, w // 64) + conv(fe.conv4_2.kernel, h // 128, w // 128)
    for heads in (model.box_heads, model.class_heads):
        for head, stride in zip(heads, anchor_generator.STRIDES):
            total += conv(head.kernel, h // stride, w // stride)
    return total


def upstream_reference_graph(model, score_threshold, iou_threshold, max_boxes):
    """Builds the upstream-style TF1 inference graph with the model's weights as constants."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    weights = {name: var.numpy() for name, var in model.named_variables().items()}
    with graph.as_default():
        v1.disable_control_flow_v2()
        images = v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        x = tf.cast(images, tf.float32) / 255.0
        shape = tf.shape(x)
        height, width = shape[1], shape[2]
        ph, pw = anchor_generator.padded_size(height, width)
        x = tf.pad(x, [[0, 0], [0, ph - height], [0, pw - width], [0, 0]])
        x = 2.0 * x - 1.0

        def conv_bn(scope, t, stride=1):
            y = tf.nn.conv2d(t, weights[f"{scope}/weights"], stride, "SAME")
            y, _, _ = v1.nn.fused_batch_norm(
                y, weights[f"{scope}/batch_norm/gamma"], weights[f"{scope}/batch_norm/beta"],
                weights[f"{scope}/batch_norm/moving_mean"], weights[f"{scope}/batch_norm/moving_variance"],
                epsilon=1e-3, is_training=False)
            return y

        def crelu(t):
            return tf.nn.relu(tf.concat([t, -t], -1))

        x = tf.nn.max_pool2d(crelu(conv_bn("conv1", x, 4)), 3, 2, "SAME")
        x = tf.nn.max_pool2d(crelu(conv_bn("conv2", x, 2)), 3, 2, "SAME")
        for k in (1, 2, 3):
            s = f"inception{k}"
            relu_bn = (lambda name, t: tf.nn.relu(conv_bn(f"{s}/{name}", t)))
            x = tf.concat([
                relu_bn("conv_1x1_path1", x),
                relu_bn("conv_1x1_path2", tf.nn.max_pool2d(x, 3, 1, "SAME")),
                relu_bn("conv_3x3_path3", relu_bn("conv_1x1_path3", x)),
                relu_bn("conv_3x3_second_path4", relu_bn("conv_3x3_path4", relu_bn("conv_1x1_path4", x))),
            ], -1)
        maps = [x]
        x = tf.nn.relu(conv_bn("conv3_1", x))
        maps.append(tf.nn.relu(conv_bn("conv3_2", x, 2)))
        x = tf.nn.relu(conv_bn("conv4_1", maps[1]))
        maps.append(tf.nn.relu(conv_bn("conv4_2", x, 2)))
        encodings, logits = [], []
        for i, fmap in enumerate(maps):
            for kind, depth, out in (("box_encoding_predictor", 4, encodings), ("class_predictor", 2, logits)):
                scope = f"prediction_layers/{kind}_{i}"
                y = tf.nn.bias_add(tf.nn.conv2d(fmap, weights[f"{scope}/weights"], 1, "SAME"),
                                   weights[f"{scope}/biases"])
                out.append(tf.reshape(y, [tf.shape(y)[0], -1, depth]))
        encodings = tf.concat(encodings, 1)
        probs = tf.nn.softmax(tf.concat(logits, 1), axis=-1)[:, :, 1]
        anchors, _ = anchor_generator.generate_anchors(ph, pw)
        boxes = box_utils.decode(encodings, anchors[None])
        scale = tf.cast(tf.stack([ph, pw, ph, pw]), tf.float32) / tf.cast(
            tf.stack([height, width, height, width]), tf.float32)
        boxes = tf.clip_by_value(boxes * scale, 0.0, 1.0)

        def per_image(args):
            b, s = args
            keep = tf.image.non_max_suppression(b, s, max_boxes, iou_threshold, score_threshold)
            n = tf.shape(keep)[0]
            b = tf.pad(tf.gather(b, keep), [[0, max_boxes - n], [0, 0]])
            s = tf.pad(tf.gather(s, keep), [[0, max_boxes - n]])
            return b, s, n

        out_boxes, out_scores, num = tf.map_fn(per_image, (boxes, probs),
                                               dtype=(tf.float32, tf.float32, tf.int32), back_prop=False)
        tf.identity(out_boxes, "boxes")
        tf.identity(out_scores, "scores")
        tf.identity(num, "num_boxes")
        v1.enable_control_flow_v2()
    return graph


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per size (after 10 warm-up runs)")
    parser.add_argument("--score_threshold", type=float, default=0.5,
                        help="each path returns the boxes scoring above this (the graphs' NMS keeps "
                             "those above 0.05, the upstream's)")
    parser.add_argument("--only", action="store_true",
                        help="time only FaceDetector (float32, auto, litert) and the upstream graph, interleaved "
                             "(fewer TensorFlow sessions in turn: less interference between thread pools)")
    parser.add_argument("--weights", default=SHIPPED_WEIGHTS,
                        help="upstream-format checkpoint to run, or 'random' (default: the shipped "
                             "model's weights when present, else random)")
    parser.add_argument("--output", default=None,
                        help="also write the timings as JSON here (bench/report.py reads it)")
    args = parser.parse_args(argv)

    model = FaceBoxes(seed=0)
    rng = np.random.default_rng(0)
    real = args.weights != "random" and os.path.exists(args.weights + ".index")
    if real:
        load_upstream_checkpoint(model, args.weights)
        print(f"weights: {args.weights}; images: real photos (bench_detector.make_test_image)")
    else:
        # Random weights give tiny face scores; make some anchors fire so NMS has work.
        for head in model.class_heads:
            head.bias.assign(head.bias + rng.normal(0, 1.5, head.bias.shape).astype(np.float32))
        print("weights: random (seeded, boosted class biases); images: uniform noise")

    def session_runner(graph):
        """(run(image) -> (boxes [N, 4], scores [N]) above --score_threshold) for a graph with the
        upstream node names, filtered in numpy as the upstream's FaceDetector does."""
        session = tf.compat.v1.Session(graph=graph)
        fetches = [graph.get_tensor_by_name(f"{n}:0") for n in ("boxes", "scores", "num_boxes")]
        feed = graph.get_tensor_by_name("image_tensor:0")

        def run(image):
            boxes, scores, num_boxes = session.run(fetches, {feed: image})
            boxes, scores = boxes[0][:num_boxes[0]], scores[0][:num_boxes[0]]
            keep = scores > args.score_threshold
            return boxes[keep], scores[keep]
        return run

    def our_frozen_graph(dtype, folder):
        """Our export path (SavedModel -> frozen .pb, as create_pb.py writes it), imported."""
        export.save_saved_model(model, folder, nms.SCORE_THRESHOLD, nms.IOU_THRESHOLD, nms.MAX_BOXES, dtype)
        graph_def = export.freeze_saved_model(folder)  # eagerly, outside the graph below
        graph = tf.Graph()
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
        return graph

    import face_detector
    from face_detector import FaceDetector
    no_bfloat16 = (os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in NO_BFLOAT16_ISAS
                   or not face_detector.cpu_has_native_bfloat16())
    if no_bfloat16:
        # No bfloat16 arithmetic (or oneDNN limited to an ISA without it): 'auto' decides as on
        # such a CPU (under the ISA limit /proc/cpuinfo still lists the real CPU's flags), and
        # the bfloat16 path is not run.
        face_detector.cpu_has_native_bfloat16 = lambda *args: False
    with tempfile.TemporaryDirectory() as temp:
        runners = [session_runner(our_frozen_graph(tf.float32, os.path.join(temp, "fp32"))),
                   None if no_bfloat16 else session_runner(our_frozen_graph(tf.bfloat16, os.path.join(temp, "bf16"))),
                   session_runner(upstream_reference_graph(model, nms.SCORE_THRESHOLD, nms.IOU_THRESHOLD,
                                                           nms.MAX_BOXES))]
        pb_path = os.path.join(temp, "model.pb")
        export.write_graph_def(export.freeze_saved_model(os.path.join(temp, "fp32")), pb_path)
        tflite_export.export_tflite(pb_path)  # model.tflite beside it
        detectors = [FaceDetector(pb_path, precision=p) for p in ("float32", "auto")]
        detectors.append(FaceDetector(pb_path, backend="litert"))
    auto = detectors[1]
    names = ("ours fp32", "ours bf16", "upstream", "FD fp32",
             f"FD auto={auto.precision if auto.backend == 'tensorflow' else auto.backend}", "FD litert")
    runners += [lambda image, d=d: d(image[0], score_threshold=args.score_threshold) for d in detectors]

    report = {"cpu": cpu_description(), "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
              "runs": args.runs, "score_threshold": args.score_threshold,
              "weights": "shipped" if real else "random", "paths": [], "path_names": {},
              "sizes": {}}
    print(f"CPU: {report['cpu']}")
    print(f"TF {tf.__version__}, ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}; "
          f"LiteRT (XNNPACK) {len(os.sched_getaffinity(0))} threads; medians of {args.runs} interleaved calls")
    print(f"{'size':>10} {'path':>18} {'median ms':>10} {'min ms':>8} {'GFLOPs':>7} {'GFLOP/s':>8} {'boxes':>6}")
    for height, width in SIZES:
        if real:
            image = make_test_image(height, width)[0][None]
        else:
            image = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
        flops = conv_flops(model, height, width) / 1e9
        outputs = [run(image) if run is not None else None for run in runners]
        ours, ref = outputs[0], outputs[2]
        # FaceDetector's float32 scores are the frozen graph's (strictly above the threshold).
        np.testing.assert_allclose(outputs[3][1], ours[1], atol=1e-6)
        # LiteRT: the same detections up to float rounding.
        assert len(outputs[5][1]) == len(outputs[3][1]), "LiteRT and the frozen graph disagree"
        np.testing.assert_allclose(outputs[5][1], outputs[3][1], atol=1e-4)
        assert len(ours[1]) == len(ref[1]), "reference and ours disagree"
        np.testing.assert_allclose(ours[1], ref[1], atol=1e-4)
        timed = [i for i, name in enumerate(names)
                 if runners[i] is not None and (i == 2 or not args.only or name.startswith("FD"))]
        timings = dict(zip(timed, time_interleaved([lambda run=runners[i]: run(image) for i in timed], args.runs,
                                                   warmup=10)))
        counts = [out and len(out[1]) for out in outputs]
        upstream_median = timings[2][0]
        size_report = report["sizes"].setdefault(f"{width}x{height}", {})
        for i in timed:
            key = "reference" if i == 2 else PATH_KEYS[i]
            if key not in report["paths"]:
                report["paths"].append(key)
                report["path_names"][key] = PATH_NAMES[key] if key in PATH_NAMES else names[i]
            size_report[key] = {"median_ms": timings[i][0], "min_ms": timings[i][1], "boxes": counts[i]}
            if key == "fd_auto":
                report["path_names"][key] = f"FaceDetector 'auto' (ran {names[i].split('=')[1]})"
        for i in timed:
            name, (median, minimum), n = names[i], timings[i], counts[i]
            print(f"{width}x{height:<5} {name:>18} {median:10.2f} {minimum:8.2f} {flops:7.2f} "
                  f"{flops / (median / 1e3):8.1f} {n:6d}  x{median / upstream_median:.2f} of upstream")

    if args.output:
        write_text_atomic(args.output, json.dumps(report, indent=1) + "\n")


# The JSON keys of the timed paths (in `names` order) and how bench/report.py labels them.
PATH_KEYS = ("ours_fp32", "ours_bf16", "reference", "fd_float32", "fd_auto", "fd_litert")
PATH_NAMES = {"reference": "the upstream's inference graph (TF1 style, Session.run)",
              "ours_fp32": "our frozen graph, Session.run, float32",
              "ours_bf16": "our frozen graph, Session.run, bfloat16",
              "fd_float32": "FaceDetector float32 (the default)",
              "fd_litert": "FaceDetector backend='litert' (XNNPACK, float32)"}


if __name__ == "__main__":
    main()
