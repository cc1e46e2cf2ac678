"""Freeze a SavedModel (from save.py) into a single `.pb` inference graph.

The graph's input placeholder is `image_tensor` (uint8 [batch, height, width, 3]) and its
outputs are the nodes `boxes`, `scores` and `num_boxes`, as in the upstream, so the file works
with `face_detector.FaceDetector` and with code written for the upstream's graph. Variables
become constants and batch norm is folded into the convolutions. Written atomically; an
existing output file is replaced only with --overwrite.

--tflite also writes the network (up to the prediction heads) as a LiteRT model beside the
`.pb` (model.pb -> model.tflite), which FaceDetector(..., backend='litert') and the 'auto'
backend run with XNNPACK; it records the `.pb`'s sha256, so a `.tflite` is only ever used with
the `.pb` it was made from (src/tflite_export.py). Without -s, --tflite converts the existing
--output_pb (a `.pb` is all it needs). It needs the ai_edge_litert package.

User errors (a missing, empty or corrupt SavedModel, an existing output, an output that is a
folder) end with one line `error: ...` on stderr and exit code 2; --debug shows the traceback.

Examples:
    python create_pb.py -s export/run00/240000 -o model.pb
    python create_pb.py -s export/run00 -o model.pb      # the latest version in the folder
    python create_pb.py -s export/run00 -o model.pb --overwrite
    python create_pb.py -s export/run00 -o model.pb --tflite   # also model.tflite
    python create_pb.py --tflite -o model/facebox.pb            # model/facebox.tflite from the .pb
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from src.cli import UserError, add_debug_flag, import_tensorflow, report_errors  # noqa: E402


def resolve_saved_model(path):
    """A SavedModel folder, or the highest numbered version inside a parent folder.

    Raises:
        FileNotFoundError: `path` does not exist.
        UserError: `path` is neither a SavedModel folder nor a folder of numbered versions.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such SavedModel folder", path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
    if not versions:
        raise UserError(f"{path}: not a SavedModel folder and holds no numbered versions")
    return os.path.join(path, max(versions, key=int))


def check_output(path, overwrite):
    """Refuses an output that is a folder, or that exists without `overwrite` (before any work)."""
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder; give the path of the .pb file to write")
    if os.path.lexists(path) and not overwrite:
        raise UserError(f"{path}: already exists; pass --overwrite to replace it")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise UserError(f"{path}: {parent} is not a folder")
    if os.path.isdir(parent) and not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write into {parent}: permission denied")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-s", "--saved_model_folder",
                        help="SavedModel folder (or its parent); required unless --tflite converts an existing .pb")
    parser.add_argument("-o", "--output_pb", default="model.pb", help="where to write the frozen graph")
    parser.add_argument("--overwrite", action="store_true", help="replace --output_pb if it exists")
    parser.add_argument("--tflite", action="store_true",
                        help="also write the network as a LiteRT model beside the .pb (model.pb -> model.tflite, "
                             "always replaced); without -s, convert the existing --output_pb")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.saved_model_folder is None and not args.tflite:
        parser.error("the following arguments are required: -s/--saved_model_folder (or --tflite to convert "
                     "an existing --output_pb)")
    return args


def write_tflite(pb_path):
    """Writes the .tflite of `pb_path` beside it; returns a one-line summary."""
    from src import tflite_export
    try:
        path, facts = tflite_export.export_tflite(pb_path)
    except ImportError as e:
        raise UserError(f"--tflite needs the ai_edge_litert package: pip install ai-edge-litert==2.3.0 ({e})") from e
    except tflite_export.TfliteExportError as e:
        raise UserError(f"{pb_path}: cannot convert to .tflite: {e}") from e
    except ValueError as e:  # not a GraphDef: the message names the file
        raise UserError(str(e)) from e
    return (f"wrote {path} ({facts['size_bytes'] / 2**20:.1f} MB): the network to its {facts['heads']} heads, "
            f"outputs within {facts['relative_difference']:.1e} (relative) of the .pb's")


def run(argv=None):
    """The script without the error policy: user errors are raised (UserError, OSError)."""
    args = parse_args(argv)
    if args.saved_model_folder is None:  # --tflite from an existing .pb
        if not os.path.isfile(args.output_pb):
            raise FileNotFoundError(2, "no such .pb to convert", args.output_pb)
        import_tensorflow()
        print(write_tflite(args.output_pb))
        return 0
    check_output(args.output_pb, args.overwrite)
    saved_model = resolve_saved_model(args.saved_model_folder)
    import_tensorflow()
    from src import export
    try:
        graph_def = export.freeze_saved_model(saved_model)
    except export.InvalidSavedModelError as e:
        raise UserError(str(e)) from e
    try:
        export.write_graph_def(graph_def, args.output_pb, overwrite=args.overwrite)
    except FileExistsError as e:  # appeared while freezing
        raise UserError(f"{args.output_pb}: already exists; pass --overwrite to replace it") from e
    counts = export.op_counts(graph_def)
    top = ", ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda x: -x[1])[:6])
    size_mb = os.path.getsize(args.output_pb) / 2**20
    print(f"wrote {args.output_pb} ({size_mb:.1f} MB): {len(graph_def.node)} ops ({top}, ...)")
    if args.tflite:
        print(write_tflite(args.output_pb))
    return 0


def main(argv=None):
    """Runs the script; returns 0, or 2 after printing one `error: ...` line (--debug re-raises)."""
    return report_errors(run, argv)


if __name__ == "__main__":
    sys.exit(main())
