"""ImageDecoder: encoded image bytes or files -> uint8 RGB HWC arrays with Pillow, with clear errors.

Shared by the image-folder sources and ``minwa pack``.  A file Pillow cannot
identify, a truncated JPEG or PNG, or any other decoding failure becomes a
DataError naming the file, which the loader's ``on_error`` policy then handles.
``resize`` scales the shorter side to that many pixels (bilinear, with Pillow's
antialiasing when shrinking), the multi-scale training setting.
"""
import io
import os

import numpy

from minwa.errors import DataError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class ImageDecoder:
    """Decode to RGB uint8 HWC, optionally resizing the shorter side to ``resize``."""

    def __init__(self, resize=None):
        self.resize = None if resize in (None, 0) else int(resize)

    def decode(self, data, where):
        """``data``: bytes of an encoded image, or None to read the file ``where``."""
        from PIL import Image, ImageFile

        ImageFile.LOAD_TRUNCATED_IMAGES = False
        if data is None:
            try:
                with open(os.fspath(where), "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                raise DataError(f"{where}: cannot open image: {exc}") from exc
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                image = image.convert("RGB") if image.mode != "RGB" else image
                if self.resize:
                    image = self._resized(image)
                return numpy.asarray(image, dtype=numpy.uint8).copy()
        except Exception as exc:  # Pillow raises many kinds on bad data (OSError, SyntaxError, ValueError, ...)
            raise DataError(f"{where}: cannot decode image ({type(exc).__name__}: {exc})") from exc

    def _resized(self, image):
        from PIL import Image

        width, height = image.size
        short = min(width, height)
        if short == self.resize:
            return image
        ratio = self.resize / short
        size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        return image.resize(size, Image.BILINEAR, reducing_gap=None)


def is_image_name(name):
    return name.lower().endswith(EXTENSIONS)
