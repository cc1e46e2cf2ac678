"""What each optional speed path of face_detector.FaceDetector gains, measured by turning it off.

Each path is timed against the same detector without it, interleaved call by call in one process
(medians of --runs calls, after warm-up, each call with FaceDetector's default score_threshold
0.5), at 1024x768 and 640x480, on the shipped model and bench_detector.py's photo pair (astronaut +
Grace Hopper):
  - score_floor: the boxes scoring at or below the call's threshold left out of NMS (off: the
    graph as frozen, whose NMS walks every anchor above 0.05); timed on TensorFlow and, where the
    model's .tflite and ai_edge_litert are there, on LiteRT.
FaceDetector also saves a little per call in three ways (see its "per-call overheads" section),
each timed on TensorFlow, and all three against a detector without any:
  - zero_copy: the numpy image handed to TensorFlow through DLPack (off: tf.convert_to_tensor,
    which copies it into a new buffer);
  - fast_call: calling the concrete functions' AtomicFunction directly (off: ConcreteFunction
    __call__, which binds the inputs to its signature every call);
  - merged_casts (bfloat16 only): one uint8 -> bfloat16 cast of the image instead of two;
  - all: the three together.
Two more paths were measured this way and removed (docs/experiments.md): the shape-only part of the
graph run once per size (0.1-4.6% in float32, none in bfloat16) and size-specialised bfloat16
graphs (-0.7-1.8%); the script's version that timed them is in git (commit edc9611).
Prints, per path and size, the median with and without it and the gain (1 - with / without).
The CPU is named first.

Example:
    python bench/bench_speed_paths.py --runs 30
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SIZES = ((768, 1024), (480, 640))
WARMUP = 10


def build(model, precision, backend='tensorflow', **patches):
    """A FaceDetector made while face_detector's module attributes in `patches` are replaced."""
    import face_detector
    saved = {name: getattr(face_detector, name) for name in patches}
    try:
        for name, value in patches.items():
            setattr(face_detector, name, value)
        return face_detector.FaceDetector(model, precision=precision, backend=backend)
    finally:
        for name, value in saved.items():
            setattr(face_detector, name, value)


def pairs(model, precision, backend):
    """[(path name, detector with it, detector without it)]."""
    import tensorflow as tf
    bfloat16 = precision == 'bfloat16'
    base = build(model, precision, backend)
    result = [('score_floor', base, build(model, precision, backend, add_score_floor=lambda graph: (graph, False)))]
    if backend == 'litert':
        return result
    no_fast_call = dict(_fast_call=lambda concrete: concrete)
    result += [('zero_copy', base, _Copying(build(model, precision), tf.convert_to_tensor)),
               ('fast_call', base, build(model, precision, **no_fast_call))]
    no_merge = dict(_merge_uint8_casts=lambda graph: graph) if bfloat16 else {}
    if bfloat16:
        result.append(('merged_casts', base, build(model, precision, **no_merge)))
    result.append(('all', base, _Copying(build(model, precision, **no_fast_call, **no_merge), tf.convert_to_tensor)))
    return result


class _Copying:
    """A FaceDetector whose module-level _to_tensor is `convert` during its calls."""

    def __init__(self, detector, convert):
        self.detector, self.convert = detector, convert

    def __call__(self, image):
        import face_detector
        saved, face_detector._to_tensor = face_detector._to_tensor, self.convert
        try:
            return self.detector(image)
        finally:
            face_detector._to_tensor = saved


def time_pair(with_path, without_path, image, runs):
    for detector in (with_path, without_path):
        for _ in range(WARMUP):
            detector(image)
    times = ([], [])
    for _ in range(runs):
        for detector, bucket in zip((with_path, without_path), times):
            start = time.perf_counter()
            detector(image)
            bucket.append(time.perf_counter() - start)
    return tuple(1000 * statistics.median(bucket) for bucket in times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default=os.path.join(ROOT, 'model', 'facebox.pb'), help='frozen .pb')
    parser.add_argument('--runs', type=int, default=30, help='timed calls per detector and size (medians)')
    args = parser.parse_args(argv)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    from bench_conv1 import cpu_description
    from bench_detector import make_test_image

    from face_detector import LiteRTUnavailable, cpu_has_native_bfloat16, load_tflite_for
    print(f'CPU: {cpu_description()}')
    modes = [('float32', 'tensorflow')]
    if cpu_has_native_bfloat16():
        modes.append(('bfloat16', 'tensorflow'))
    else:
        print('(no native bfloat16 here: the bfloat16-only paths are not timed)')
    try:
        load_tflite_for(args.model)
        modes.append(('float32', 'litert'))
    except (ImportError, LiteRTUnavailable) as error:
        print(f'(LiteRT not timed: {error})')
    print(f"{'runs':>19} {'path':>13} {'size':>9} {'with ms':>8} {'without':>8} {'gain':>6}")
    for precision, backend in modes:
        for name, with_path, without_path in pairs(args.model, precision, backend):
            for height, width in SIZES:
                image, _ = make_test_image(height, width)
                on, off = time_pair(with_path, without_path, image, args.runs)
                print(f"{precision + ' ' + backend:>19} {name:>13} {width}x{height:<4} "
                      f'{on:8.2f} {off:8.2f} {1 - on / off:6.1%}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
