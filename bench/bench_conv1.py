"""conv1 written three ways, timed in TensorFlow and in LiteRT (XNNPACK), interleaved in one process.

conv1 is FaceBoxes' 7x7 / stride-4 convolution over the 3 image channels, followed by CReLU
(relu(concat(y, -y))) and a 3x3 / stride-2 max pool: [1, H + 3, W + 3, 3] float32 pixels
(the frozen graph pads the image by [1, 2] before a 'VALID' convolution) -> [1, H/8, W/8, 48].
The variants compute the same sums:
  - doubled: one convolution with kernel [W, -W] and bias [b, -b] (48 filters), ReLU, max
    pool: what the frozen graph does today (src/network.py, _with_negation).
  - negation: the upstream's 24 filters, then relu(concat(max_pool(y), max_pool(-y))) (pooling
    commutes with ReLU and with negation's order reversal, so the result is the same).
  - s2d doubled / s2d negation: the kernel zero-padded to 8x8, the input (one more row and
    column) rearranged by space_to_depth(4) into 48 channels at stride 4, and a 2x2 / stride-1
    convolution: fewer, denser multiply-adds per pixel for the int8/float kernels that handle
    3 input channels badly (issue 26), and 64/49 more of them.
Each variant's output is checked against `doubled` (max abs difference printed).

The CPU is named with its flags first; TensorFlow's oneDNN can be restricted to AVX2 with
--onednn_max_cpu_isa AVX2 (set before TensorFlow loads; an approximation of an AVX2-only CPU:
XNNPACK, which LiteRT uses, cannot be restricted and still picks its best kernels).

Example:
    python bench/bench_conv1.py --runs 30
    python bench/bench_conv1.py --runs 30 --onednn_max_cpu_isa AVX2
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = ((768, 1024), (512, 640))  # (height, width), padded to multiples of 128 (640x480 -> 640x512)
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_description(cpuinfo_path="/proc/cpuinfo"):
    """'model name; flags of interest; N cores' of this machine (Linux), for benchmark headers; says so
    when bench/as_avx2_cpu.sh hides features (the flags are then the ones it shows)."""
    name, flags = "unknown CPU", set()
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and name == "unknown CPU":
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    present = [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags]
    absent = [flag for flag in CPU_FLAGS_OF_INTEREST if flag not in flags]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    emulated = ("; AVX-512, AMX and VNNI hidden by bench/as_avx2_cpu.sh"
                if "as_avx2_cpu" in os.environ.get("LD_PRELOAD", "") else "")
    return f"{name}; flags: {' '.join(present) or 'none'} (no {' '.join(absent) or '-'}); {cores} cores{emulated}"


def time_interleaved(fns, runs, warmup=5):
    """(median, minimum) milliseconds of each function over `runs` calls, calling them in turn
    (bench_model.py uses it too)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, t in zip(fns, times):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    return [(statistics.median(t) * 1e3, min(t) * 1e3) for t in times]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed calls per variant and size (median)")
    parser.add_argument("--onednn_max_cpu_isa", default=None,
                        help="restrict TensorFlow's oneDNN kernels, e.g. AVX2 (ONEDNN_MAX_CPU_ISA)")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT threads (default: the cores)")
    args = parser.parse_args(argv)
    if args.onednn_max_cpu_isa:
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.onednn_max_cpu_isa
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    print(f"CPU: {cpu_description()}")
    print(f"TF {tf.__version__}, ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}; "
          f"LiteRT XNNPACK, {threads} threads (not restrictable); medians of {args.runs} interleaved calls")
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 0.05, (7, 7, 3, 24)).astype(np.float32)
    bias = rng.normal(0, 0.5, (24,)).astype(np.float32)
    doubled_kernel = np.concatenate([kernel, -kernel], -1)
    doubled_bias = np.concatenate([bias, -bias])

    def s2d_kernel(k):
        """[7, 7, 3, C] -> [2, 2, 48, C]: zero-padded to 8x8, blocks in space_to_depth's channel order."""
        k8 = np.zeros((8, 8, 3, k.shape[-1]), np.float32)
        k8[:7, :7] = k
        # [bi, dy, bj, dx, c, C] -> [bi, bj, dy, dx, c, C]; space_to_depth orders channels (dy, dx, c).
        return k8.reshape(2, 4, 2, 4, 3, -1).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 48, -1)

    def pool(t):
        return tf.nn.max_pool2d(t, 3, 2, "SAME")

    def doubled(x):
        return pool(tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, doubled_kernel, 4, "VALID"), doubled_bias)))

    def negation(x):
        y = tf.nn.bias_add(tf.nn.conv2d(x, kernel, 4, "VALID"), bias)
        return tf.nn.relu(tf.concat([pool(y), pool(-y)], -1))

    def s2d(x):
        # One more row and column (multiplied by the kernel's zero 8th row/column).
        x = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])
        return tf.nn.space_to_depth(x, 4)

    def s2d_doubled(x):
        y = tf.nn.conv2d(s2d(x), s2d_kernel(doubled_kernel), 1, "VALID")
        return pool(tf.nn.relu(tf.nn.bias_add(y, doubled_bias)))

    def s2d_negation(x):
        y = tf.nn.bias_add(tf.nn.conv2d(s2d(x), s2d_kernel(kernel), 1, "VALID"), bias)
        return tf.nn.relu(tf.concat([pool(y), pool(-y)], -1))

    variants = {"doubled": doubled, "negation": negation, "s2d doubled": s2d_doubled, "s2d negation": s2d_negation}
    spec = tf.TensorSpec([1, None, None, 3], tf.float32)
    tf_functions = {name: tf.function(fn, input_signature=[spec]).get_concrete_function()
                    for name, fn in variants.items()}
    interpreters = {}
    with tempfile.TemporaryDirectory():
        for name, function in tf_functions.items():
            content = tf.lite.TFLiteConverter.from_concrete_functions([function], function).convert()
            interpreters[name] = content
    print(f"{'size':>10} {'variant':>14} {'TF ms':>8} {'LiteRT ms':>10} {'max |diff|':>11}")
    for height, width in SIZES:
        x = rng.uniform(0, 255, (1, height + 3, width + 3, 3)).astype(np.float32)
        tensor = tf.constant(x)
        runners, reference = [], None
        rows = []
        for name in variants:
            function = tf_functions[name]
            interpreter = Interpreter(model_content=interpreters[name], num_threads=threads)
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, x.shape)
            interpreter.allocate_tensors()
            output = interpreter.get_output_details()[0]["index"]

            def lite(interpreter=interpreter, index=index, output=output):
                interpreter.set_tensor(index, x)
                interpreter.invoke()
                return interpreter.get_tensor(output)

            tf_out = function(tensor).numpy()
            reference = tf_out if reference is None else reference
            diff = max(np.abs(tf_out - reference).max(), np.abs(lite() - reference).max())
            rows.append((name, diff))
            runners += [lambda function=function: function(tensor), lite]
        medians = [median for median, _ in time_interleaved(runners, args.runs)]
        for k, (name, diff) in enumerate(rows):
            print(f"{width}x{height:<5} {name:>14} {medians[2 * k]:8.2f} {medians[2 * k + 1]:10.2f} {diff:11.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
