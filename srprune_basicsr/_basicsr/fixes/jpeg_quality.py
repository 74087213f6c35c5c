"""``jpeg_quality``: basicsr's ``add_jpg_compression`` hands OpenCV 4.5.4+ a float quality, which it refuses.

Needs ``basicsr/data/degradations.py``: copies of basicsr that do not ship it (DAT's) have
nothing to fix and skip it.
"""

from __future__ import annotations

from typing import Any

from srprune_basicsr._basicsr.fixes.base import Fix


def _add_jpg_compression(img: Any, quality: float = 90) -> Any:
    """basicsr's ``degradations.add_jpg_compression`` with the integer quality OpenCV 4.5.4 and later take.

    basicsr draws the quality from ``jpeg_range`` (a float) and hands it to ``cv2.imencode``, which
    refuses it ("Can't parse 'params'"), so GFPGAN's FFHQDegradationDataset (and any dataset adding
    JPEG artifacts through it) failed on its first item. The quality is rounded; the image is made
    8-bit as OpenCV does itself (rounded, saturated: the same encoded bytes, without its warning).
    """
    import cv2
    import numpy as np

    img = np.clip(img, 0, 1)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(round(float(quality)))]
    _, encoded = cv2.imencode('.jpg', np.round(img * 255.).astype(np.uint8), params)
    return np.float32(cv2.imdecode(encoded, 1)) / 255.


def apply() -> None:
    """Replace ``degradations.add_jpg_compression``."""
    import basicsr.data.degradations

    basicsr.data.degradations.add_jpg_compression = _add_jpg_compression


FIX = Fix('jpeg_quality', 'version', '`add_jpg_compression` passes a float JPEG quality, which OpenCV 4.5.4+ refuses',
          ('basicsr.data.degradations:add_jpg_compression',), apply)
