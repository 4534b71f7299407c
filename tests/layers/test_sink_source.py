"""Sink and Source build from minwa YAML and from the pipeline papers' own prototxt."""
import numpy
import pytest

from minwa.errors import ConfigError
from minwa.net import Net
from minwa.prototxt import net_to_model, parse_prototxt

CLIENT = '''
name: "client"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 100 dim: 3 dim: 32 dim: 32 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 pad: 2 kernel_size: 5 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "sink1" type: "Sink" bottom: "pool1" sink_param: { host_name: "server.example.com" port: 3000 } }
'''
CLOUD = '''
name: "cloud"
layer { name: "source1" type: "Source" top: "pool1" source_param: { port: 3000 }
        reshape_param{ shape { dim : [ 100, 4, 16, 16 ] } } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" inner_product_param { num_output: 10 } }
'''


def test_the_papers_client_prototxt_builds_and_its_sink_holds_the_blob():
    model, _ = net_to_model(parse_prototxt(CLIENT))
    net = Net(model, phase="TEST")
    sink = net.layer("sink1")
    assert (sink.host, sink.port, sink.pair) == ("server.example.com", 3000, 3000)
    x = numpy.random.default_rng(0).standard_normal((100, 3, 32, 32)).astype(numpy.float32)
    assert net.forward({"data": x}) == {}
    assert sink.value.shape == (100, 4, 16, 16) and numpy.array_equal(sink.value, net.blobs["pool1"])


def test_the_papers_cloud_prototxt_builds_with_the_source_as_its_input():
    model, _ = net_to_model(parse_prototxt(CLOUD))
    net = Net(model, phase="TEST")
    assert net.input_names == ["pool1"] and net.blob_shapes["pool1"] == (100, 4, 16, 16)
    out = net.forward({"pool1": numpy.ones((7, 4, 16, 16), numpy.float32)})
    assert out["ip1"].shape == (7, 10)


def test_yaml_sink_and_source_with_pair_keys():
    net = Net({"layers": [
        {"name": "s", "type": "Source", "top": "x", "source_param": {"port": 5600, "pair": 1, "shape": [2, 3]}},
        {"name": "k", "type": "Sink", "bottom": "x", "sink_param": {"host_name": "h", "port": 5600, "pair": 1}}]})
    assert net.layer("s").pair == 1 and net.layer("k").pair == 1 and net.blob_shapes["x"] == (2, 3)
    captured = []
    net.layer("k").emit = lambda layer, value: captured.append(value)
    net.forward({"x": numpy.ones((2, 3), numpy.float32)})
    assert len(captured) == 1


@pytest.mark.parametrize("param, message", [
    ({"port": 1}, "missing the blob shape"),
    ({"port": 1, "shape": [2, -3]}, "positive whole numbers"),
    ({"shape": [2, 3]}, "port.*missing"),
    ({"port": 70000, "shape": [2, 3]}, "0..65535"),
    ({"port": 1, "shape": [2, 3], "hots": 1}, "source_param.hots.*unknown key"),
])
def test_bad_source_fields_are_named(param, message):
    with pytest.raises(ConfigError, match=message):
        Net({"layers": [{"name": "s", "type": "Source", "top": "x", "source_param": param}]})


def test_source_shape_given_twice_must_agree():
    with pytest.raises(ConfigError, match="differ"):
        Net({"layers": [{"name": "s", "type": "Source", "top": "x", "source_param": {"port": 1, "shape": [2, 3]},
                         "reshape_param": {"shape": {"dim": [2, 4]}}}]})


def test_bad_sink_fields_are_named():
    layers = [{"name": "in", "type": "Input", "top": "x", "input_param": {"shape": [{"dim": [2, 3]}]}}]
    with pytest.raises(ConfigError, match="sink_param.prot.*unknown key"):
        Net({"layers": layers + [{"name": "k", "type": "Sink", "bottom": "x", "sink_param": {"prot": 1}}]})
    with pytest.raises(ConfigError, match="'port': missing"):
        Net({"layers": layers + [{"name": "k", "type": "Sink", "bottom": "x", "sink_param": {}}]})
