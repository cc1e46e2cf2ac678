import cv2
import numpy as np
import tensorflow as tf

from src.detector import FaceBoxes
from src.losses_and_ohem import OHEMParams
from src.training import make_optimizer, train_step


def drawn_faces(seed, size=256, faces=3):
    """A batch image with simple drawn faces and their normalized boxes [N, 4] (yxyx)."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), rng.integers(40, 120, 3), np.uint8)
    boxes = []
    for k in range(faces):
        h = int(rng.integers(40, 80))
        w = int(h * 0.8)
        y = 10 + k * (size - 20) // faces
        x = int(rng.integers(0, size - w))
        cy, cx = y + h // 2, x + w // 2
        cv2.ellipse(image, (cx, cy), (w // 2, h // 2), 0, 0, 360, (220, 180, 150), -1)
        for ex in (cx - w // 5, cx + w // 5):
            cv2.circle(image, (ex, cy - h // 8), max(2, w // 12), (30, 30, 30), -1)
        cv2.line(image, (cx - w // 6, cy + h // 4), (cx + w // 6, cy + h // 4), (120, 40, 40), 2)
        boxes.append([y / size, x / size, (y + h) / size, (x + w) / size])
    return image.astype(np.float32) / 255.0, np.asarray(boxes, np.float32)


def test_a_few_steps_lower_the_loss_clearly():
    tf.keras.utils.set_random_seed(0)
    model = FaceBoxes(seed=0)
    items = [drawn_faces(s) for s in range(2)]
    batch = {
        "images": tf.constant(np.stack([i for i, _ in items])),
        "boxes": tf.constant(np.stack([b for _, b in items])),
        "num_boxes": tf.constant([3, 3], tf.int32),
    }
    optimizer = make_optimizer([1000], [0.01, 0.001], 0.9)
    step = tf.function(lambda b: train_step(model, optimizer, b, (1.0, 1.0), OHEMParams(),
                                            weight_decay=1e-3))
    losses = []
    for _ in range(25):
        out = step(batch)
        losses.append(float(out["localization_loss"] + out["classification_loss"]))
    assert int(optimizer.iterations) == 25
    # Measured: about 9.2 -> 0.08 (the L2 term stays near 0.86). A broken gradient, target or
    # mining would not fall by a factor of 5.
    assert np.mean(losses[-3:]) < 0.2 * np.mean(losses[:3]), losses
