"""The optional OpenCV module: a faster pixel kernel for the augmentation where it is installed.

OpenCV is not a dependency of minwa: ``pip install opencv-python-headless`` (or
albumentations, which brings it) makes the pipeline mirror crops with ``cv2.flip`` (exact,
about 20x numpy's negative-stride copy) and warp them with ``cv2.remap`` (see
opencv_remap). ``MINWA_AUGMENT_OPENCV=0`` turns it off.
"""
import os

_MODULE = []


def opencv():
    """The cv2 module, or None when it is missing or MINWA_AUGMENT_OPENCV=0."""
    if os.environ.get("MINWA_AUGMENT_OPENCV", "1").strip() == "0":
        return None
    if not _MODULE:
        try:
            import cv2

            _MODULE.append(cv2)
        except ImportError:
            _MODULE.append(None)
    return _MODULE[0]
