"""Constant-velocity Kalman filter for many face boxes at once (SORT's motion model).

Box convention: pixel [x1, y1, x2, y2] (x right, y down, x2 > x1, y2 > y1).

The state of one box is SORT's (Bewley et al. 2016) seven-vector
    [u, v, s, r, u', v', s']
with (u, v) the box centre, s = w * h its area, r = w / h its aspect ratio, and the
velocities of u, v and s; the aspect ratio is modelled as constant (no velocity).
A measurement is [u, v, s, r].

Instead of one filter object per track, every quantity is stored as a stacked array
(`x` [T, 7], `P` [T, 7, 7]) so a frame costs a few batched matrix products whatever
the number of faces. The matrices are the reference SORT values, so with the same
measurements this gives the same numbers as a per-track filterpy.KalmanFilter.
"""
import numpy as np

STATE_DIM = 7
MEASUREMENT_DIM = 4

# F: constant velocity, one frame per step; u += u', v += v', s += s'.
TRANSITION = np.eye(STATE_DIM)
TRANSITION[0, 4] = TRANSITION[1, 5] = TRANSITION[2, 6] = 1.0
# H: the measurement is the first four state entries.
OBSERVATION = np.eye(MEASUREMENT_DIM, STATE_DIM)
# R: unit noise on the centre, 10x on area and ratio (reference SORT: R[2:, 2:] *= 10).
MEASUREMENT_NOISE = np.diag([1.0, 1.0, 10.0, 10.0])
# P0: unit, velocities 1000x (they are unobserved at birth), everything 10x
# (reference SORT: P[4:, 4:] *= 1000; P *= 10).
INITIAL_COVARIANCE = np.diag([10.0, 10.0, 10.0, 10.0, 10000.0, 10000.0, 10000.0])
# Q: unit, velocities 0.01x, area velocity 0.0001x
# (reference SORT: Q[-1, -1] *= 0.01; Q[4:, 4:] *= 0.01).
PROCESS_NOISE = np.diag([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 0.0001])


def _check_boxes(boxes, name):
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise ValueError(f"{name} must have shape [N, >=4], got {boxes.shape}")
    return boxes


def boxes_to_measurements(boxes):
    """Converts boxes to Kalman measurements.

    Args:
        boxes: float array [N, >=4], pixel x1, y1, x2, y2 (extra columns ignored).

    Returns:
        float64 array [N, 4]: centre u, centre v, area s, aspect ratio r = w / h.

    Raises:
        ValueError: if `boxes` is not two-dimensional with at least 4 columns.
    """
    boxes = _check_boxes(boxes, "boxes")
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0] + w / 2.0, boxes[:, 1] + h / 2.0, w * h, w / h], axis=1)


def states_to_boxes(states):
    """Converts Kalman states (or measurements) to boxes.

    Args:
        states: float array [N, >=4] whose first columns are u, v, s, r.

    Returns:
        float64 array [N, 4], pixel x1, y1, x2, y2. Rows with s * r < 0 come out NaN
        (the reference tracker drops such tracks).
    """
    states = np.asarray(states, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        w = np.sqrt(states[:, 2] * states[:, 3])
        h = states[:, 2] / w
    return np.stack([states[:, 0] - w / 2.0, states[:, 1] - h / 2.0,
                     states[:, 0] + w / 2.0, states[:, 1] + h / 2.0], axis=1)


def initial_state(boxes):
    """Builds the state and covariance of newly born tracks.

    Args:
        boxes: float array [N, >=4], pixel x1, y1, x2, y2.

    Returns:
        (x, P): float64 arrays [N, 7] (zero velocities) and [N, 7, 7].
    """
    z = boxes_to_measurements(boxes)
    x = np.zeros((len(z), STATE_DIM))
    x[:, :MEASUREMENT_DIM] = z
    P = np.broadcast_to(INITIAL_COVARIANCE, (len(z), STATE_DIM, STATE_DIM)).copy()
    return x, P


def predict(x, P):
    """Advances every state by one frame.

    As in reference SORT, an area velocity that would make the area non-positive is
    zeroed before predicting.

    Args:
        x: float64 array [T, 7], states.
        P: float64 array [T, 7, 7], covariances.

    Returns:
        (x, P): new arrays [T, 7] and [T, 7, 7]; the inputs are not modified.
    """
    x = x.copy()
    x[x[:, 6] + x[:, 2] <= 0, 6] = 0.0
    x = x @ TRANSITION.T
    P = TRANSITION @ P @ TRANSITION.T + PROCESS_NOISE
    return x, P


def correct(x, P, boxes):
    """Kalman update of some states with their matched boxes.

    Uses the Joseph form P = (I - KH) P (I - KH)^T + K R K^T, as filterpy does.

    Args:
        x: float64 array [K, 7], predicted states of the matched tracks.
        P: float64 array [K, 7, 7], their covariances.
        boxes: float array [K, >=4], matched pixel x1, y1, x2, y2.

    Returns:
        (x, P): updated arrays [K, 7] and [K, 7, 7].
    """
    z = boxes_to_measurements(boxes)
    residual = z - x[:, :MEASUREMENT_DIM]  # [K, 4]
    PHt = P[:, :, :MEASUREMENT_DIM]  # [K, 7, 4] (= P H^T since H selects)
    S = P[:, :MEASUREMENT_DIM, :MEASUREMENT_DIM] + MEASUREMENT_NOISE  # [K, 4, 4]
    gain = PHt @ np.linalg.inv(S)  # [K, 7, 4]
    x = x + np.einsum("kij,kj->ki", gain, residual)
    I_KH = np.eye(STATE_DIM) - gain @ OBSERVATION  # [K, 7, 7]
    P = I_KH @ P @ np.swapaxes(I_KH, 1, 2) + gain @ MEASUREMENT_NOISE @ np.swapaxes(gain, 1, 2)
    return x, P
