"""Tests for src/input_pipeline/parse.py and pipeline.py (boxes: normalized yxyx)."""
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from src.input_pipeline import augmentations as aug
from src.input_pipeline.parse import parse_example
from src.input_pipeline.pipeline import build_dataset, element_seed, list_shards
from src.tfrecords import ShardSetError, write_manifest


def make_example(filename, jpeg, boxes, lengths=None):
    """A serialized tf.train.Example in the upstream schema.

    Args:
        filename: str.
        jpeg: bytes.
        boxes: array [N, 4], normalized ymin, xmin, ymax, xmax.
        lengths: optional dict key -> how many values to store (to corrupt the record).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    columns = {'ymin': boxes[:, 0], 'xmin': boxes[:, 1], 'ymax': boxes[:, 2], 'xmax': boxes[:, 3]}
    feature = {
        'filename': tf.train.Feature(bytes_list=tf.train.BytesList(value=[filename.encode()])),
        'image': tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg])),
    }
    for key, values in columns.items():
        values = values[:(lengths or {}).get(key, len(values))]
        feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def encode_jpeg(image):
    """uint8 RGB [H, W, 3] -> JPEG bytes."""
    ok, buffer = cv2.imencode('.jpg', np.ascontiguousarray(image[:, :, ::-1]),
                              [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buffer.tobytes()


def synthetic_records(count, rng, max_boxes=3, zero_boxes=False):
    """``count`` records of random-sized smooth images with random boxes.

    Returns:
        a list of (filename, jpeg bytes, boxes [N, 4]) tuples.
    """
    records = []
    for index in range(count):
        height, width = int(rng.integers(40, 80)), int(rng.integers(40, 100))
        coarse = rng.uniform(0, 255, (4, 5, 3)).astype(np.float32)
        image = cv2.resize(coarse, (width, height)).astype(np.uint8)
        num = 0 if zero_boxes else int(rng.integers(0, max_boxes + 1))
        size = rng.uniform(0.1, 0.5, (num, 1))
        ymin, xmin = rng.uniform(0, 1 - size), rng.uniform(0, 1 - size)
        boxes = np.concatenate([ymin, xmin, ymin + size, xmin + size], 1).astype(np.float32)
        records.append((f'image_{index:03d}.jpg', encode_jpeg(image), boxes.reshape(-1, 4)))
    return records


def write_shards(folder, records, num_shards):
    """Writes records round-robin into shard-NNNN.tfrecords files and their shards.json;
    returns the shard paths."""
    paths = [os.path.join(folder, f'shard-{k:04d}.tfrecords') for k in range(num_shards)]
    writers = [tf.io.TFRecordWriter(path) for path in paths]
    counts = [0] * num_shards
    for index, (filename, jpeg, boxes) in enumerate(records):
        writers[index % num_shards].write(make_example(filename, jpeg, boxes))
        counts[index % num_shards] += 1
    for writer in writers:
        writer.close()
    write_manifest(folder, zip(paths, counts))
    return paths


def as_numpy(dataset):
    return [{key: value.numpy() for key, value in batch.items()} for batch in dataset]


def test_parse_hand_written_record_gives_exact_boxes():
    jpeg = encode_jpeg(np.zeros((8, 8, 3), np.uint8))
    record = make_example('a/b.jpg', jpeg, [[0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 1.0, 0.75]])
    parsed = parse_example(tf.constant(record))
    assert parsed['filename'].numpy() == b'a/b.jpg'
    assert parsed['image'].numpy() == jpeg
    np.testing.assert_array_equal(parsed['boxes'].numpy(),
                                  np.float32([[0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 1.0, 0.75]]))


def test_parse_record_without_boxes():
    parsed = parse_example(tf.constant(make_example('e.jpg', b'x', np.zeros((0, 4)))))
    assert parsed['boxes'].shape == (0, 4)


def test_parse_rejects_lists_of_different_lengths():
    record = make_example('bad.jpg', b'x', [[0.1, 0.1, 0.2, 0.2]] * 2, lengths={'xmax': 1})
    with pytest.raises(tf.errors.InvalidArgumentError, match='bad.jpg'):
        parse_example(tf.constant(record))


def test_parse_rejects_boxes_outside_unit_range_and_inverted():
    for box in ([0.1, 0.1, 1.5, 0.2], [0.5, 0.1, 0.2, 0.2]):
        with pytest.raises(tf.errors.InvalidArgumentError, match='odd.jpg'):
            parse_example(tf.constant(make_example('odd.jpg', b'x', [box])))


def test_list_shards(tmp_path):
    expected = write_shards(str(tmp_path), synthetic_records(3, np.random.default_rng(0)), 2)
    (tmp_path / 'other.txt').write_bytes(b'')
    assert list_shards(tmp_path) == expected
    assert list_shards(str(tmp_path / 'shard-*.tfrecords')) == expected
    assert list_shards(tmp_path / 'other.txt') == [str(tmp_path / 'other.txt')]
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no shard-'):
        list_shards(empty)
    with pytest.raises(FileNotFoundError, match='matches no files'):
        list_shards(str(tmp_path / 'nothing-*.tfrecords'))
    with pytest.raises(FileNotFoundError, match='missing'):
        list_shards(tmp_path / 'missing')


def test_list_shards_needs_a_matching_manifest(tmp_path):
    """A folder is read only with its shards.json, and only when the files are exactly the listed ones."""
    records = synthetic_records(4, np.random.default_rng(0))
    folder = tmp_path / 'set'
    folder.mkdir()
    paths = write_shards(str(folder), records, 2)
    one_file = list_shards(paths[0])  # one explicit file needs no manifest
    assert one_file == [paths[0]]

    (folder / 'shards.json').rename(tmp_path / 'saved.json')  # an interrupted (or older) run
    for path in (folder, str(folder / 'shard-*.tfrecords')):
        with pytest.raises(FileNotFoundError, match='no shards.json: .*re-run create_tfrecords.py --overwrite'):
            list_shards(path)
    with pytest.raises(FileNotFoundError, match='no shards.json'):
        build_dataset(str(folder), training=False, batch_size=1, image_size=None)
    assert len(as_numpy(build_dataset(paths, training=False, batch_size=1, image_size=None))) == 4  # a list: no manifest
    (tmp_path / 'saved.json').rename(folder / 'shards.json')

    extra = folder / 'shard-0002.tfrecords'
    extra.write_bytes(open(paths[0], 'rb').read())
    with pytest.raises(ShardSetError, match=r'3 shard-\*.tfrecords files but shards.json lists 2 '
                                            r'\(not listed: shard-0002.tfrecords\)'):
        list_shards(folder)
    extra.unlink()
    os.remove(paths[1])
    with pytest.raises(ShardSetError, match=r'missing: shard-0001.tfrecords'):
        list_shards(str(folder))
    with open(paths[1], 'wb') as f:
        f.write(b'\0' * 10)  # replaced by another file of another size
    with pytest.raises(ShardSetError, match='shard-0001.tfrecords: 10 bytes but shards.json says'):
        list_shards(str(folder))
    with pytest.raises(ShardSetError, match='shard-0001.tfrecords: 10 bytes'):
        list_shards(str(folder / '*.tfrecords'))

    (folder / 'shards.json').write_text('{"format": "faceboxes-tf shards"')
    with pytest.raises(ShardSetError, match='not a valid shards.json'):
        list_shards(folder)


def test_list_shards_glob_checks_every_folder_and_empty_sets(tmp_path):
    rng = np.random.default_rng(0)
    for name in ('a', 'b'):
        (tmp_path / name).mkdir()
        write_shards(str(tmp_path / name), synthetic_records(2, rng), 2)
    pattern = str(tmp_path / '*' / 'shard-*.tfrecords')
    assert len(list_shards(pattern)) == 4
    (tmp_path / 'b' / 'shards.json').unlink()
    with pytest.raises(FileNotFoundError, match=f'{tmp_path / "b"}: no shards.json'):
        list_shards(pattern)
    (tmp_path / 'a' / 'stray.tfrecords').write_bytes(b'')
    with pytest.raises(ShardSetError, match='stray.tfrecords: matched by .* but not listed'):
        list_shards(str(tmp_path / 'a' / '*.tfrecords'))
    (tmp_path / 'empty').mkdir()
    write_shards(str(tmp_path / 'empty'), [], 1)  # a manifest that says 0 records
    with pytest.raises(ShardSetError, match='holds no records'):
        list_shards(tmp_path / 'empty')


def test_eval_dataset_keeps_size_order_and_boxes(tmp_path):
    records = synthetic_records(5, np.random.default_rng(0))
    records[2] = (records[2][0], records[2][1], np.zeros((0, 4), np.float32))
    shards = write_shards(str(tmp_path), records, num_shards=1)
    batches = as_numpy(build_dataset(shards, training=False, batch_size=1, image_size=None))
    assert len(batches) == 5
    for batch, (filename, jpeg, boxes) in zip(batches, records):
        expected_image = tf.io.decode_jpeg(jpeg, channels=3).numpy().astype(np.float32) / 255
        assert batch['images'].shape == (1,) + expected_image.shape
        assert batch['images'].dtype == np.float32
        np.testing.assert_allclose(batch['images'][0], expected_image, atol=1e-6)
        np.testing.assert_array_equal(batch['boxes'][0], boxes)
        assert batch['boxes'].shape == (1, len(boxes), 4)
        assert batch['num_boxes'].tolist() == [len(boxes)]
        assert batch['filenames'].tolist() == [filename.encode()]


def test_eval_dataset_argument_errors(tmp_path):
    shards = write_shards(str(tmp_path), synthetic_records(1, np.random.default_rng(0)), 1)
    with pytest.raises(ValueError, match='image_size must be None'):
        build_dataset(shards, training=False, batch_size=1, image_size=(64, 64))
    with pytest.raises(ValueError, match='batch_size must be 1'):
        build_dataset(shards, training=False, batch_size=4, image_size=None)
    with pytest.raises(FileNotFoundError, match='nope.tfrecords'):
        build_dataset([str(tmp_path / 'nope.tfrecords')], training=False, batch_size=1,
                      image_size=None)


def test_training_argument_errors(tmp_path):
    shards = write_shards(str(tmp_path), synthetic_records(1, np.random.default_rng(0)), 1)
    with pytest.raises(ValueError, match='image_size'):
        build_dataset(shards, training=True, batch_size=2, image_size=None)
    with pytest.raises(ValueError, match='needs a seed'):
        build_dataset(shards, training=True, batch_size=2, image_size=(32, 32),
                      deterministic=True)
    with pytest.raises(ValueError, match='batch_size'):
        build_dataset(shards, training=True, batch_size=0, image_size=(32, 32))


def test_training_batches_have_static_shapes_and_padding(tmp_path):
    records = synthetic_records(11, np.random.default_rng(1), max_boxes=4)
    write_shards(str(tmp_path), records, num_shards=3)
    dataset = build_dataset(str(tmp_path), training=True, batch_size=4, image_size=(48, 64),
                            deterministic=True, seed=1)
    spec = dataset.element_spec
    assert spec['images'].shape.as_list() == [4, 48, 64, 3]
    assert spec['boxes'].shape.as_list() == [4, None, 4]
    assert spec['num_boxes'].shape.as_list() == [4] and spec['num_boxes'].dtype == tf.int32
    assert spec['filenames'].shape.as_list() == [4] and spec['filenames'].dtype == tf.string
    batches = as_numpy(dataset)
    assert len(batches) == 2  # 11 examples, the partial batch of 3 is dropped
    names = set()
    for batch in batches:
        assert batch['images'].min() >= 0.0 and batch['images'].max() <= 1.0
        assert batch['boxes'].shape[1] == batch['num_boxes'].max()
        for boxes, count in zip(batch['boxes'], batch['num_boxes']):
            assert np.all(boxes[count:] == 0)
            assert np.all(boxes[:count, 2] >= boxes[:count, 0])
            assert np.all(boxes[:count, 3] >= boxes[:count, 1])
        names.update(batch['filenames'].tolist())
    assert len(names) == 8 and names <= {r[0].encode() for r in records}


def test_training_with_zero_box_images(tmp_path):
    records = synthetic_records(4, np.random.default_rng(2), zero_boxes=True)
    write_shards(str(tmp_path), records, num_shards=1)
    for augment in (True, False):
        batches = as_numpy(build_dataset(str(tmp_path), training=True, batch_size=2,
                                         image_size=(32, 32), deterministic=True, seed=0,
                                         augment=augment))
        assert len(batches) == 2
        for batch in batches:
            assert batch['boxes'].shape == (2, 0, 4)
            assert batch['num_boxes'].tolist() == [0, 0]
            assert batch['images'].shape == (2, 32, 32, 3)


def test_deterministic_runs_are_identical(tmp_path):
    records = synthetic_records(12, np.random.default_rng(3))
    write_shards(str(tmp_path), records, num_shards=3)

    def run(seed):
        return as_numpy(build_dataset(str(tmp_path), training=True, batch_size=3,
                                      image_size=(40, 40), deterministic=True, seed=seed,
                                      shuffle_buffer=8))

    first, second, other = run(5), run(5), run(6)
    assert len(first) == len(second) == 4
    for a, b in zip(first, second):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a['images'], b['images']) for a, b in zip(first, other))


def test_repeat_gives_more_than_one_epoch_with_new_augmentations(tmp_path):
    records = synthetic_records(4, np.random.default_rng(4))
    write_shards(str(tmp_path), records, num_shards=2)
    dataset = build_dataset(str(tmp_path), training=True, batch_size=4, image_size=(32, 32),
                            deterministic=True, seed=2, repeat=True)
    batches = as_numpy(dataset.take(3))
    assert len(batches) == 3
    for batch in batches:
        assert sorted(batch['filenames'].tolist()) == sorted(r[0].encode() for r in records)
    # Each epoch draws new augmentations (the per-example seed is the stream index).
    assert not np.array_equal(batches[0]['images'], batches[1]['images'])


@pytest.mark.parametrize('partial_face_ignore_below', [None, 0.6])
def test_fused_decode_and_crop_matches_augment_on_decoded_image(tmp_path, partial_face_ignore_below):
    # The pipeline crops while decoding; with the same per-example seed it must make the
    # choices augmentations.augment makes on the fully decoded image.
    records = synthetic_records(6, np.random.default_rng(5), max_boxes=4)
    by_name = {name.encode(): (jpeg, boxes) for name, jpeg, boxes in records}
    write_shards(str(tmp_path), records, num_shards=2)
    seed, size = 9, (56, 72)
    batches = as_numpy(build_dataset(str(tmp_path), training=True, batch_size=1,
                                     image_size=size, deterministic=True, seed=seed,
                                     partial_face_ignore_below=partial_face_ignore_below))
    assert len(batches) == 6
    for index, batch in enumerate(batches):
        jpeg, boxes = by_name[batch['filenames'][0]]
        decoded = tf.image.convert_image_dtype(tf.io.decode_jpeg(jpeg, channels=3), tf.float32)
        image, new_boxes, new_ignore = aug.augment(decoded, tf.constant(boxes), size,
                                                   element_seed(seed, index),
                                                   partial_face_ignore_below=partial_face_ignore_below)
        count = batch['num_boxes'][0]
        np.testing.assert_allclose(batch['boxes'][0, :count], new_boxes.numpy(), atol=1e-6)
        np.testing.assert_allclose(batch['ignore_boxes'][0, :batch['num_ignore'][0]], new_ignore.numpy(),
                                   atol=1e-6)
        # Partial JPEG decoding may differ slightly at the window border (chroma
        # upsampling); the bulk of the pixels must agree.
        difference = np.abs(batch['images'][0] - image.numpy())
        assert difference.mean() < 0.01 and difference.max() < 0.1


def test_corrupt_jpeg_stops_or_is_skipped(tmp_path):
    records = synthetic_records(4, np.random.default_rng(6))
    records[1] = ('corrupt.jpg', b'not a jpeg at all', records[1][2])
    write_shards(str(tmp_path), records, num_shards=1)
    good = sorted(r[0].encode() for r in records if r[0] != 'corrupt.jpg')
    for training in (True, False):
        kwargs = ({'training': True, 'batch_size': 1, 'image_size': (32, 32),
                   'deterministic': True, 'seed': 0} if training
                  else {'training': False, 'batch_size': 1, 'image_size': None})
        with pytest.raises(tf.errors.InvalidArgumentError):
            as_numpy(build_dataset(str(tmp_path), **kwargs))
        batches = as_numpy(build_dataset(str(tmp_path), skip_bad_examples=True, **kwargs))
        assert sorted(b['filenames'][0] for b in batches) == good
