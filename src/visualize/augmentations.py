"""The augmentations picture: augmented training samples from tfrecords with their boxes.

Boxes: the input pipeline's normalized ``[ymin, xmin, ymax, xmax]``, drawn in pixel
``[x1, y1, x2, y2]``.
"""
from __future__ import annotations

import os

import numpy as np

from src.visualize.drawing import draw_boxes, normalized_to_pixel_xyxy


def augmentation_tiles(tfrecords, count, image_size, seed=0):
    """Augmented training samples from tfrecords, with their boxes drawn.

    Args:
        tfrecords: a path or a list of paths, each a tfrecord file, a folder of shards or a glob
            pattern (see `pipeline.list_shards`).
        count: number of samples (drawn as one batch; the data repeat if there are fewer).
        image_size: (height, width) of the training images.
        seed: the pipeline seed (same seed, same pictures).

    Returns:
        list of `count` uint8 [height, width, 3] RGB images.
    """
    from src.input_pipeline.pipeline import build_dataset, list_shards

    if isinstance(tfrecords, (str, os.PathLike)):
        tfrecords = [tfrecords]
    files = [name for path in tfrecords for name in list_shards(path)]
    dataset = build_dataset(files, training=True, batch_size=int(count), image_size=tuple(image_size),
                            deterministic=True, seed=int(seed), repeat=True)
    batch = next(iter(dataset.take(1)))
    images = np.clip(np.round(batch["images"].numpy() * 255.0), 0, 255).astype(np.uint8)
    boxes, num_boxes = batch["boxes"].numpy(), batch["num_boxes"].numpy()
    height, width = images.shape[1:3]
    return [draw_boxes(images[k], normalized_to_pixel_xyxy(boxes[k, :num_boxes[k]], height, width))
            for k in range(len(images))]
