"""Comparing two runtimes' detections (PyTorch's and onnxruntime's) by pairs, not by position.

Detections whose scores are equal to float rounding may come out in another order from another runtime (the
sort and NMS see a different last bit), so the i-th box of one list need not be the i-th of the other: each
detection is paired with its closest counterpart of the same image and label instead.
"""
import numpy as np


def pair_detections(keys_a: np.ndarray, scores_a: np.ndarray, boxes_a: np.ndarray, keys_b: np.ndarray,
                    scores_b: np.ndarray, boxes_b: np.ndarray, box_scale: float = 1.0) -> np.ndarray:
    """For each detection of ``a``, the index of its closest unpaired detection of ``b`` with equal keys.

    Args:
        keys_a (np.ndarray): (N,) or (N, K) integers that must be equal in a pair, e.g. the labels, or
            (image index, label) columns.
        scores_a (np.ndarray): (N,) scores.
        boxes_a (np.ndarray): (N, 4) boxes.
        keys_b, scores_b, boxes_b (np.ndarray): the same for ``b``.
        box_scale (float): box differences are divided by it (e.g. the image size) before they are weighed
            against score differences. Defaults to 1.0.

    Returns:
        np.ndarray: (N,) indices into ``b``; -1 where no detection of ``b`` with those keys is left. Closeness
        is the larger of the score difference and the largest box coordinate difference / ``box_scale``;
        ``a``'s detections pick in the order of their scores, best first.
    """
    # (N,) keys as (N, 1); with ``shape[1:]`` rather than -1, which numpy cannot infer when N is 0.
    keys_a, keys_b = (k.reshape(len(k), *(k.shape[1:] or (1,))) for k in (keys_a, keys_b))
    free = np.ones(len(keys_b), dtype=bool)
    pairs = np.full(len(keys_a), -1, dtype=np.int64)
    for i in np.argsort(-scores_a, kind='stable'):
        candidates = np.nonzero(free & (keys_b == keys_a[i]).all(1))[0]
        if not len(candidates):
            continue
        distance = np.maximum(np.abs(scores_b[candidates] - scores_a[i]),
                              np.abs(boxes_b[candidates] - boxes_a[i]).max(1) / box_scale)
        pairs[i] = candidates[np.argmin(distance)]
        free[pairs[i]] = False
    return pairs
