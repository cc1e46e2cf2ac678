import numpy as np
import pytest

from src.box_formats import xyxy_to_yxyx, yxyx_to_xyxy


def test_swaps_and_round_trips():
    yxyx = np.array([[10.0, 20.0, 30.0, 60.0]])
    np.testing.assert_array_equal(yxyx_to_xyxy(yxyx), [[20.0, 10.0, 60.0, 30.0]])
    np.testing.assert_array_equal(xyxy_to_yxyx(yxyx_to_xyxy(yxyx)), yxyx)
    assert yxyx_to_xyxy(np.zeros((0, 4))).shape == (0, 4)
    assert yxyx_to_xyxy(np.zeros((2, 3, 4))).shape == (2, 3, 4)


def test_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        yxyx_to_xyxy(np.zeros((3, 5)))
