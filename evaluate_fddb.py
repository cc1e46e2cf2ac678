"""Evaluates face detections on FDDB (discrete and continuous ROC), like the official tool.

Reads the annotation ellipses, the detections and the images' sizes, writes
<prefix>DiscROC.txt ('true_positive_rate false_positives threshold'), <prefix>ContROC.txt
('continuous_true_positive_rate false_positives') and <prefix>ROC.png, and prints the
discrete true positive rate at 1000 false positives (the row with the largest FP <= 1000).
The semantics are documented in src/evaluation/fddb.py.

Existing outputs are refused unless --overwrite. User errors (missing or malformed files, an
existing output) end with one line ``error: <what>: <why>`` and exit code 2; --debug shows
the traceback.

Example (after predict_for_fddb.py --output_dir result/):
    python evaluate_fddb.py -a result/ellipseList.txt -d result/detections.txt \\
        -i /data/FDDB/originalPics -l result/faceList.txt -z .jpg -r result/
"""
import sys

if __name__ == '__main__':  # Ctrl-C while the modules load: one line, exit 130
    from src.cli import quiet_ctrl_c
    quiet_ctrl_c()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from tqdm import tqdm  # noqa: E402

from src.cli import UserError, add_debug_flag, report_errors  # noqa: E402
from src.evaluation import fddb  # noqa: E402
from src.evaluation.roc_plot import save_roc_plot  # noqa: E402

logger = logging.getLogger('evaluate_fddb')
OUTPUT_NAMES = ('DiscROC.txt', 'ContROC.txt', 'ROC.png')


def parse_args(argv=None):
    """The parsed command line; usage errors and bad values raise UserError (one line)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-a', dest='annotation_file', required=True,
                        help='annotations in the FDDB ellipse list format')
    parser.add_argument('-d', dest='detection_file', required=True,
                        help='detections: path line, count line, then one line per detection')
    parser.add_argument('-i', dest='image_dir', required=True,
                        help='image folder; image files are <image_dir>/<name><extension>')
    parser.add_argument('-l', dest='image_list', default=None,
                        help='image list (one name per line); default: the images of -a')
    parser.add_argument('-z', dest='extension', default='.jpg', help='image file extension (default .jpg)')
    parser.add_argument('-r', dest='prefix', default='',
                        help="output prefix: writes <prefix>DiscROC.txt, <prefix>ContROC.txt, "
                             "<prefix>ROC.png (e.g. 'result/'; default: the current folder)")
    parser.add_argument('-f', dest='format', type=int, choices=(0, 1), default=0,
                        help='detection format: 0 rectangle (left top width height score), '
                             '1 ellipse (major minor angle cx cy score) (default 0)')
    parser.add_argument('--no_plot', action='store_true', help='do not write the ROC plot')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the output files if they exist (default: refuse)')
    parser.add_argument('--at_fp', default=str(fddb.REPORT_FALSE_POSITIVES),
                        help='comma-separated false-positive budgets to report the TPRs at, e.g. '
                             '47,100 for a partial FDDB of 133 images (47 FP ~ 1000 FP on all 2,845) '
                             '(default %(default)s)')
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    try:
        args.budgets = [int(value) for value in args.at_fp.split(',')]
    except ValueError:
        args.budgets = [-1]
    if any(budget < 0 for budget in args.budgets):
        raise UserError('--at_fp %s: expected comma-separated non-negative integers' % args.at_fp)
    return args


def check_outputs(args):
    """Raises UserError if an output exists (without --overwrite) or is a folder."""
    names = OUTPUT_NAMES[:2] if args.no_plot else OUTPUT_NAMES
    for path in (args.prefix + name for name in names):
        if os.path.isdir(path):
            raise UserError('%s: is a folder, not an output file (-r %s)' % (path, args.prefix))
        if os.path.exists(path) and not args.overwrite:
            raise UserError('%s: already exists; pass --overwrite to replace it (or another -r)' % path)
    folder = os.path.dirname(args.prefix) or '.'
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError('%s: is a file, not a folder (-r %s)' % (folder, args.prefix))


def _main(argv):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    check_outputs(args)
    start = time.time()
    try:
        images = fddb.load_problem(
            args.annotation_file, args.detection_file, args.image_dir, args.image_list,
            args.extension, detection_ellipses=args.format == 1,
            progress=lambda items: tqdm(items, desc='reading image sizes', unit='img'))
    except ValueError as error:
        raise UserError(str(error)) from None
    curve = fddb.evaluate(images, detection_ellipses=args.format == 1,
                          progress=lambda items: tqdm(items, desc='matching', unit='img'))
    disc_path, cont_path = fddb.write_roc(args.prefix, curve)
    if not args.no_plot:
        save_roc_plot(args.prefix + 'ROC.png', curve)
    num_dets = sum(len(image.detections) for image in images)
    at = '; '.join('discrete TPR %.4f, continuous %.4f at %d false positives'
                   % (fddb.tpr_at_false_positives(curve, budget),
                      fddb.tpr_at_false_positives(curve, budget, continuous=True), budget)
                   for budget in args.budgets)
    print('%d images, %d faces, %d detections: %s (wrote %s, %s) in %.1f s'
          % (len(images), curve.num_faces, num_dets, at, disc_path, cont_path, time.time() - start))
    return 0


def main(argv=None):
    """The CLI; returns the exit code: 0, 2 after one ``error:`` line (a user error), 130 on Ctrl-C."""
    return report_errors(_main, argv)


if __name__ == '__main__':
    sys.exit(main())
