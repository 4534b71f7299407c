"""ModelScorer: one trained model (its own config and weights) scoring test images in views.

The TEST net is built from the model's config, its weights are loaded from the
checkpoint (a mismatch names the weights file, the config and the parameter), and it is
turned fully convolutional, so a crop view gives a 1x1 score map and a dense view a
larger one. Preprocessing (mean, pixel multiplier) is the model's own ``data:`` block.
Views are run in sub-batches sized so the blobs of one forward stay under
``memory_mb``, whatever the scale.
"""
import numpy

from .. import backend
from ..errors import ConfigError, DataError
from .fully_convolutional import FullyConvolutional
from .merge import from_map
from .views import View, ViewMaker, parse_views


class ModelScorer:
    """Scores of each view (``scales`` x ``crops`` x ``flip``; default: ``base_view``) for batches of images.

    ``base_view`` is the model alone: the centre crop at its test scale, as its trainer tested it.
    ``label`` names the model in tables; ``mean`` = (mean array or None, multiplier) overrides
    the preprocessing read from the model's training data.
    """

    def __init__(self, config, weights, scales=None, crops="center", flip=False, memory_mb=256, label=None,
                 mean=None, dtype=None):
        from ..checkpoint import load_checkpoint  # noqa: PLC0415 - h5py
        from ..config import load_config  # noqa: PLC0415
        from ..net import Net  # noqa: PLC0415

        self.job = config if hasattr(config, "model") else load_config(config)
        self.config_path = getattr(self.job, "path", None) or self.job.name
        self.weights = str(weights)
        self.label = label or self.job.name
        self.dtype = dtype or self.job.train.get("dtype", "float32")
        net = Net(self.job.model, phase="TEST", dtype=self.dtype, init=False)
        try:
            load_checkpoint(self.weights, net)
        except DataError as exc:
            raise DataError(f"--weights {self.weights} does not fit the model of {self.config_path}: {exc}") from None
        self.fc = FullyConvolutional(self.job.model, dtype=self.dtype)
        host = {p.name: backend.to_host(p.data) for p in net.params}
        self.params = {k: backend.to_device(numpy.asarray(v, dtype=self.dtype))
                       for k, v in self.fc.convert_params(host).items()}
        channels, height, width = self.fc.input_shape
        if height != width:
            raise ConfigError(f"{self.config_path}: the net's input is {height}x{width}; views need a square input")
        self.crop_size = height
        self.base_view = View(self._base_scale(), "center", False)  # the model alone, as its trainer tested it
        self.views = parse_views(scales or [self.base_view.scale], crops, flip)
        self._check_views()
        self.run_views = self.views + ([self.base_view] if self.base_view not in self.views else [])
        mean, multiplier = self._preprocessing() if mean is None else mean
        self.maker = ViewMaker(self.crop_size, mean, multiplier)
        self.memory_bytes = int(memory_mb * 2 ** 20)
        self._nets = {}

    def _check_views(self):
        smallest = None
        for view in self.views:
            if view.crop != "dense" and view.scale < self.crop_size:
                raise ConfigError(f"--scales {view.scale}: model {self.label} ({self.config_path}) takes "
                                  f"{self.crop_size}x{self.crop_size} crops, which do not fit a {view.scale}-px "
                                  f"image; use scales >= {self.crop_size}")
            if view.crop == "dense":
                smallest = self.fc.min_size() if smallest is None else smallest
                if view.scale < smallest:
                    raise ConfigError(f"--scales {view.scale}: smaller than the receptive field of model "
                                      f"{self.label} ({self.config_path}); it needs at least {smallest} px")

    def _base_scale(self):
        augment = self.job.data.get("augment") or {}
        scale = augment.get("test_scale") or augment.get("scales") or self.crop_size
        if isinstance(scale, dict):
            scale = scale.get("min", self.crop_size)
        if isinstance(scale, (list, tuple)):
            scale = min(scale)
        return max(int(scale), self.crop_size)

    def _preprocessing(self):
        """(mean array or None, multiplier) as the model's training loader applies them."""
        from minwa.datasets import make_loader  # noqa: PLC0415

        data = dict(self.job.data, prefetch=0)
        try:
            loader = make_loader(data, "train", seed=0)
        except (ConfigError, DataError) as exc:
            raise DataError(f"model {self.label} ({self.config_path}): cannot read its training data for the mean "
                            f"image ({exc}); give the data.path the model was trained with") from None
        mean = None if loader.mean is None else loader.mean.values
        return mean, loader.scale

    # -- running -------------------------------------------------------------------
    def _net(self, height, width):
        key = (height, width)
        if key not in self._nets:
            from ..net import Net  # noqa: PLC0415

            net = Net(self.fc.at_size(height, width), phase="TEST", dtype=self.dtype, init=False)
            for p in net.params:
                p.data = self.params[p.name]
            per_image = sum(int(numpy.prod(s[1:])) for s in net.blob_shapes.values() if len(s) > 1)
            itemsize = numpy.dtype(self.dtype).itemsize
            # each layer keeps what its backward would need: count every blob about twice
            chunk = max(1, self.memory_bytes // max(1, 2 * per_image * itemsize))
            self._nets[key] = (net, chunk)
        return self._nets[key]

    def score(self, images):
        """{view: Scores} for ``images`` (a list of uint8 HWC arrays)."""
        out = {}
        batches = self.maker.batches(images, self.run_views)
        for view in self.run_views:
            x = batches.pop(view)
            net, chunk = self._net(x.shape[2], x.shape[3])
            maps = []
            for start in range(0, len(x), chunk):
                part = backend.to_device(x[start:start + chunk].astype(self.dtype, copy=False))
                net.forward({self.fc.data_blob: part})
                scores = net.blobs[self.fc.scores]
                maps.append(backend.to_host(scores).astype(numpy.float64))
            out[view] = from_map(numpy.concatenate(maps) if maps else numpy.zeros((0, 1, 1, 1)))
        return out
