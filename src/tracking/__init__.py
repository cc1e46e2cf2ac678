"""Face tracking (pure numpy/scipy, pixel [x1, y1, x2, y2] boxes): kalman, association,
tracker (FaceTracker, modes 'sort' | 'byte'), face_crops (best faces per track)."""
