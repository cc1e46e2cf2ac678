"""The tf.data input pipeline: tfrecord shards -> batches for training or evaluation.

Box convention: boxes are ``[ymin, xmin, ymax, xmax]`` normalized to [0, 1] of the image
they belong to (after augmentation, of the augmented image).

Each batch is a dict:
    'images': float32 [B, H, W, 3], values in [0, 1];
    'boxes': float32 [B, N, 4], zero padded beyond each image's box count, N the largest
        box count in the batch (may be 0);
    'num_boxes': int32 [B];
    'ignore_boxes': float32 [B, M, 4], the ignore regions (faces nobody is sure of), zero
        padded likewise;
    'num_ignore': int32 [B];
    'filenames': string [B], the example's ``filename`` feature.

The box axes N and M vary from batch to batch (the most boxes of an image in the batch);
``element_spec`` leaves them None, so a training step traced with that spec as its input
signature compiles once.

Training batches have a static shape [batch_size, height, width, 3]. The random crop is
fused into JPEG decoding: the crop window is sampled from the shape in the JPEG header
and only that window is decoded (``tf.io.decode_and_crop_jpeg``), which gives the same
window, boxes and (up to chroma upsampling at the window border) pixels as
``augmentations.augment`` on the fully decoded image with the same per-example seed.

Per-example seeds are ``element_seed(base_seed, index)`` with ``index`` the example's
position in the (shuffled, repeated) stream, so with ``deterministic=True`` and a fixed
``seed`` two runs give identical batches.
"""
import logging
import numbers
import os
import random

import tensorflow as tf

from src.input_pipeline import augmentations
from src.input_pipeline.parse import parse_example
from src.tfrecords import MANIFEST_NAME, ShardSetError, verified_shard_files

logger = logging.getLogger(__name__)

SHARD_PATTERN = 'shard-*.tfrecords'

# How many shard files are read at once when training (more mixes better, costs memory).
MAX_INTERLEAVED_SHARDS = 16

_SEED_RANGE = 2 ** 31 - 1


def list_shards(path):
    """Lists the tfrecord shards of a directory, a glob pattern or one file.

    A directory must be a complete shard set: its ``shards.json`` (written last by
    create_tfrecords.py) must list exactly its ``shard-*.tfrecords`` files, and the set must
    hold at least one record (``src.tfrecords.verified_shard_files``). For a glob pattern,
    the folder of every matched file is checked the same way and every matched file must be
    listed there. One explicit file path is taken as it is.

    Args:
        path: a directory, a glob pattern, or the path of one tfrecord file.

    Returns:
        a sorted list of str paths, never empty.

    Raises:
        FileNotFoundError: when nothing matches, or a shard folder has no shards.json.
        src.tfrecords.ShardSetError: a shard folder that does not match its shards.json,
            or holds no records.
    """
    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        return verified_shard_files(path)[0]
    if any(char in path for char in '*?['):
        shards = sorted(tf.io.gfile.glob(path))
        if not shards:
            raise FileNotFoundError(f'{path}: the pattern matches no files')
        listed = {folder: {os.path.basename(name) for name in verified_shard_files(folder)[0]}
                  for folder in sorted({os.path.dirname(shard) for shard in shards})}
        for shard in shards:
            if os.path.basename(shard) not in listed[os.path.dirname(shard)]:
                raise ShardSetError(f'{shard}: matched by {path} but not listed in the '
                                    f'{MANIFEST_NAME} of its folder')
        return shards
    if tf.io.gfile.exists(path):
        return [path]
    raise FileNotFoundError(f'{path}: no such file or directory')


def _resolve_files(filenames):
    """Turns ``filenames`` (a path/pattern or a list of files) into a list of str paths."""
    if isinstance(filenames, (str, os.PathLike)):
        return list_shards(filenames)
    files = [os.fspath(name) for name in filenames]
    if not files:
        raise ValueError('filenames is empty: give at least one tfrecord file')
    for name in files:
        if not tf.io.gfile.exists(name):
            raise FileNotFoundError(f'{name}: tfrecord file not found')
    return files


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f'{name} must be a positive int, got {value!r}')


def element_seed(base_seed, index):
    """The stateless seed of the example at position ``index`` of the stream.

    Args:
        base_seed: an int (or int64 scalar tensor).
        index: an int64 scalar tensor, the example's position in the stream.

    Returns:
        an int64 tensor of shape [2].
    """
    return tf.stack([tf.cast(base_seed, tf.int64), tf.cast(index, tf.int64)])


def decode_crop_and_augment(jpeg, boxes, image_size, seed, ignore_boxes=None, partial_face_ignore_below=None):
    """All training augmentations, with the random crop done while decoding the JPEG.

    Makes the same random choices as ``augmentations.augment`` with the same seed.

    Args:
        jpeg: a string scalar tensor, JPEG bytes (gray or colour).
        boxes: a float32 tensor of shape [N, 4], normalized ymin, xmin, ymax, xmax.
        image_size: a pair of ints (height, width), the training size.
        seed: an int tensor of shape [2], the per-example seed.
        ignore_boxes: an optional float32 tensor of shape [L, 4], the ignore regions.
        partial_face_ignore_below: None (upstream) or a float in (0, 1]: faces less visible
            than that after the crop become ignore regions.

    Returns:
        image: a float32 tensor of static shape [height, width, 3], values in [0, 1].
        boxes: a float32 tensor of shape [M, 4], M <= N.
        ignore_boxes: a float32 tensor of shape [K, 4] (K <= L + N).
    """
    if ignore_boxes is None:
        ignore_boxes = tf.zeros([0, 4], tf.float32)
    seeds = augmentations.split_step_seeds(seed)
    crop_window, window, cropped = augmentations.sample_crop_window(
        tf.io.extract_jpeg_shape(jpeg), boxes, seeds.crop)
    image = tf.io.decode_and_crop_jpeg(jpeg, crop_window, channels=3)
    image = tf.image.convert_image_dtype(image, tf.float32)
    boxes, ignore_boxes = augmentations.crop_faces_and_ignore_boxes(
        boxes, ignore_boxes, window, cropped, partial_face_ignore_below)
    return augmentations.augment_after_crop(image, boxes, image_size, seeds, ignore_boxes)


def _decode(jpeg):
    """JPEG bytes -> float32 [H, W, 3] in [0, 1] (gray JPEGs get three equal channels)."""
    image = tf.io.decode_jpeg(jpeg, channels=3)
    return tf.image.convert_image_dtype(image, tf.float32)


def _as_element(image, boxes, ignore_boxes, filename):
    return {'images': image,
            'boxes': boxes,
            'num_boxes': tf.shape(boxes, out_type=tf.int32)[0],
            'ignore_boxes': ignore_boxes,
            'num_ignore': tf.shape(ignore_boxes, out_type=tf.int32)[0],
            'filenames': filename}



def build_dataset(filenames, *, training, batch_size, image_size, deterministic=False,
                  seed=None, repeat=False, shuffle_buffer=1000, augment=True,
                  skip_bad_examples=False, partial_face_ignore_below=None, face_box_top_extension=0.0):
    """Builds the input pipeline over tfrecord shards.

    Training (``training=True``): shuffles the shard files and the examples, reads shards
    interleaved, parses, decodes, augments (``augmentations``, upstream order), resizes to
    ``image_size`` and makes padded batches of exactly ``batch_size`` (the last partial
    batch is dropped). Evaluation (``training=False``): the examples in file order, no
    augmentation and no resize, batches of one image at its own size.

    Args:
        filenames: a list of tfrecord paths, or a directory / glob pattern (see
            ``list_shards``).
        training: whether to build the training pipeline.
        batch_size: a positive int; must be 1 when not training.
        image_size: (height, width) of training images; must be None when not training.
        deterministic: keep the element order fixed and make two runs with the same
            ``seed`` give identical batches (slower: no out-of-order parallelism).
        seed: an int, the base seed of shuffling and augmentation. Required when training
            with ``deterministic=True``; drawn at random when None.
        repeat: repeat the data forever (each epoch reshuffled, with new augmentations).
        shuffle_buffer: size of the example shuffle buffer (training only).
        augment: apply the training augmentations (False: decode and resize only; used to
            measure the pipeline's cost without them).
        skip_bad_examples: skip examples that fail to parse or decode (corrupt JPEG, bad
            box lists), logging a warning for each, instead of stopping with the error.
        partial_face_ignore_below: None for the upstream crop rule, or a float in (0, 1]:
            faces less visible than that after the random crop become ignore regions
            (``augmentations.crop_faces_and_ignore_boxes``; training only).
        face_box_top_extension: a float >= 0: every face box's top edge moves up by this
            fraction of its height before the crop (``augmentations.extend_box_tops``;
            training only; 0: the boxes as labelled). Ignore regions are left as they are.

    Returns:
        a tf.data.Dataset of dicts as described in the module docstring.

    Raises:
        ValueError: on inconsistent arguments.
        FileNotFoundError: when a file is missing, a directory/pattern has no shards or a
            shard directory has no shards.json (see ``list_shards``).
        src.tfrecords.ShardSetError: a shard directory that does not match its shards.json.
    """
    _check_positive_int('batch_size', batch_size)
    files = _resolve_files(filenames)
    if not training:
        return _build_eval_dataset(files, batch_size, image_size, repeat, skip_bad_examples)

    if image_size is None or len(image_size) != 2:
        raise ValueError(f'training needs image_size=(height, width), got {image_size!r}')
    for value in image_size:
        _check_positive_int('image_size entries', value)
    image_size = tuple(int(value) for value in image_size)
    _check_positive_int('shuffle_buffer', shuffle_buffer)
    if not 0 <= face_box_top_extension <= 1:
        raise ValueError(f'face_box_top_extension must be in [0, 1], got {face_box_top_extension!r}')
    if deterministic and seed is None:
        raise ValueError('deterministic=True needs a seed (an int)')
    base_seed = seed if seed is not None else random.SystemRandom().randrange(_SEED_RANGE)
    logger.info('training pipeline over %d shard(s), batch %d, size %s, seed %d',
                len(files), batch_size, image_size, base_seed)

    def make_example(index, serialized):
        example = parse_example(serialized)
        boxes = augmentations.extend_box_tops(example['boxes'], face_box_top_extension)
        if augment:
            image, boxes, ignore_boxes = decode_crop_and_augment(
                example['image'], boxes, image_size, element_seed(base_seed, index),
                example['ignore_boxes'], partial_face_ignore_below)
        else:
            image = augmentations.resize(_decode(example['image']), image_size)
            ignore_boxes = example['ignore_boxes']
        return _as_element(image, boxes, ignore_boxes, example['filename'])

    dataset = tf.data.Dataset.from_tensor_slices(files)
    dataset = dataset.shuffle(len(files), seed=base_seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(tf.data.TFRecordDataset,
                                 cycle_length=min(len(files), MAX_INTERLEAVED_SHARDS),
                                 num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=deterministic)
    dataset = dataset.shuffle(shuffle_buffer, seed=base_seed + 1,
                              reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.enumerate()
    dataset = dataset.map(make_example, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
    if skip_bad_examples:
        dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.padded_batch(batch_size, drop_remainder=True)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options)


def _build_eval_dataset(files, batch_size, image_size, repeat, skip_bad_examples):
    """The evaluation pipeline: file order, own size, batch 1 (see build_dataset)."""
    if image_size is not None:
        raise ValueError('evaluation keeps images at their own size: image_size must be '
                         f'None, got {image_size!r}')
    if batch_size != 1:
        raise ValueError('evaluation images keep their own sizes, so batch_size must be 1, '
                         f'got {batch_size}')
    logger.info('evaluation pipeline over %d shard(s)', len(files))

    def make_example(serialized):
        example = parse_example(serialized)
        return _as_element(_decode(example['image']), example['boxes'], example['ignore_boxes'],
                           example['filename'])

    dataset = tf.data.TFRecordDataset(files)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(make_example, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=True)
    if skip_bad_examples:
        dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.batch(1)
    return dataset.prefetch(tf.data.AUTOTUNE)
