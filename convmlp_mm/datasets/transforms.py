"""Data transforms that catch bad data where it enters, with the file's name in the message."""
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform

from ..errors import UserError
from ..registry import register_transform


class LabelOutOfRangeError(UserError, ValueError):
    """A segmentation map holds class indices the model has no output for."""


@register_transform
class CheckSegLabels(BaseTransform):
    """Fail on segmentation labels outside ``[0, num_classes)`` (besides ``ignore_index``).

    Without it such a label ends as an index error inside the cross-entropy loss (or a device-side
    assert on a GPU) that names neither the file nor the value. Place it right after
    ``LoadAnnotations``. Images without annotations pass unchecked: the inferencers (and
    ``tools/demo.py``) take the test pipeline and drop ``LoadAnnotations`` from it, so the same config
    checks labels where they exist and runs inference on plain images.

    Args:
        num_classes (int): Number of classes of the decode head.
        ignore_index (int): The label that is ignored by the loss. Defaults to 255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: Dict) -> Optional[Dict]:
        if 'gt_seg_map' not in results:
            return results
        labels = np.unique(results['gt_seg_map'])
        bad = labels[(labels != self.ignore_index) & ((labels < 0) | (labels >= self.num_classes))]
        if bad.size:
            raise LabelOutOfRangeError(
                f"{results.get('seg_map_path', 'a segmentation map')} has label(s) {bad.tolist()} outside "
                f'0..{self.num_classes - 1} (num_classes={self.num_classes}; {self.ignore_index} is ignored). '
                f"Check the dataset's classes and reduce_zero_label, or the decode head's num_classes.")
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(num_classes={self.num_classes}, ignore_index={self.ignore_index})'
