"""Sink: the end of a client-side net in pipeline split mode (Ichinose et al., Fig. 2).

It has no tops: forward keeps its bottom in ``value`` and, when a sender is attached
(``emit``), hands it over for the trip to the matching Source. ``sink_param`` holds
``host_name`` and ``port`` (where the cloud listens) and ``pair`` (which Source of the
cloud net this blob feeds; default: the port, so pairs are told apart by port as in
the papers, all of them riding one connection).
"""
from .layer import Layer
from .registry import register


@register
class Sink(Layer):
    type = "Sink"
    n_bottoms = 1
    n_tops = 0

    def setup(self, bottom_shapes):
        self.host = str(self.option("host_name", "127.0.0.1"))
        self.port = _port(self, self.option("port"), "port")
        self.pair = _port(self, self.option("pair", self.port), "pair")
        self.value = None
        self.emit = None
        return []

    def forward(self, bottoms):
        self.value = bottoms[0]
        if self.emit is not None:
            self.emit(self, bottoms[0])
        return []


def _port(layer, value, field):
    """A pair key or port: a whole number in 0..65535."""
    if value is None:
        raise layer.error("missing (the port the cloud's Source listens on)", field)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise layer.error(f"expected a whole number in 0..65535, got {value!r}", field)
    return int(value)
