"""Source: the start of a cloud-side net in pipeline split mode (Ichinose et al., Fig. 3).

Like Input, its top is fed from outside: the pipeline server decodes what the
matching Sink sent and feeds it. The shape comes from ``source_param.shape``
([N, C, H, W], N the largest batch accepted) or, as in the papers' prototxt, from
``reshape_param { shape { dim: [...] } }``; ``port`` and ``pair`` say which Sink
it listens to (``pair`` defaults to the port).
"""
from .layer import Layer
from .registry import register
from .sink import _port  # the schema (minwa.schema.caffe_layers) refuses unknown keys


@register
class Source(Layer):
    type = "Source"
    n_bottoms = 0
    n_tops = 1

    def setup(self, bottom_shapes):
        self.port = _port(self, self.option("port"), "port")
        self.pair = _port(self, self.option("pair", self.port), "pair")
        own = _dims(self, self.option("shape"), "source_param.shape")
        reshape = self.spec.get("reshape_param") or {}
        papers = _dims(self, (reshape.get("shape") or {}).get("dim") if isinstance(reshape, dict) else None,
                       "reshape_param.shape.dim")
        if own and papers and own != papers:
            raise self.error(f"source_param.shape {list(own)} and reshape_param.shape.dim {list(papers)} differ",
                             "shape")
        shape = own or papers
        if not shape:
            raise self.error("missing the blob shape: source_param.shape [N, C, H, W] "
                             "(or reshape_param { shape { dim: [...] } })", "shape")
        self.shape = shape
        return [shape]

    def forward(self, bottoms):
        raise RuntimeError(f"layer {self.name!r} (Source): its top is fed by the pipeline server, not computed")


def _dims(layer, dims, field):
    if dims is None:
        return None
    if isinstance(dims, dict):
        dims = dims.get("dim")
    if not isinstance(dims, (list, tuple)) or not dims or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise layer.error(f"expected a list of positive whole numbers, got {dims!r}", field)
    return tuple(int(d) for d in dims)
