"""Plots FDDB ROC curves (true positive rate against false positives) to a PNG file.

No boxes here: the inputs are ROC rows as produced by src/evaluation/fddb.py.
"""
import logging

import numpy as np

from src.atomic_io import write_with

logger = logging.getLogger(__name__)

# The x range of the FDDB benchmark's published ROC plots.
DEFAULT_MAX_FALSE_POSITIVES = 2000


def save_roc_plot(path, curve, title='FDDB ROC', max_false_positives=DEFAULT_MAX_FALSE_POSITIVES):
    """Saves the discrete and continuous ROC of an evaluation as a PNG, atomically.

    Args:
        path: str, output PNG file.
        curve: src.evaluation.fddb.RocCurve (thresholds ascending; the sentinel row, if any,
            is drawn too: it is the (0 FP, 0 TPR) end point).
        title: str, plot title.
        max_false_positives: int, right end of the x axis.
    """
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    fp = np.asarray(curve.false_positives, dtype=np.float64)
    figure, axes = plt.subplots(figsize=(7, 5), dpi=100)
    try:
        axes.plot(fp, curve.tpr_discrete, label='discrete score', color='tab:blue')
        axes.plot(fp, curve.tpr_continuous, label='continuous score', color='tab:orange')
        axes.set_xlim(0, max_false_positives)
        axes.set_ylim(0, 1)
        axes.set_xlabel('false positives')
        axes.set_ylabel('true positive rate')
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.legend(loc='lower right')
        write_with(path, lambda tmp: figure.savefig(tmp, format='png'))
    finally:
        plt.close(figure)
    logger.info('wrote ROC plot %s', path)
