"""split_model: where layers go, the cut shapes (the papers' Table 3 bytes), and the clear errors."""
import copy
import os

import numpy
import pytest

import minwa
from minwa.errors import ConfigError
from minwa.net import Net
from minwa.parallel.pipeline.splitter import split_model


@pytest.fixture(scope="module")
def cifar10_full():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    return minwa.load_config(os.path.join(root, "configs", "cifar10_full.yaml"), validate=False).model


def _with_filters(model, layer, n):
    model = copy.deepcopy(model)
    for spec in model["layers"]:
        if spec["name"] == layer:
            spec["convolution_param"]["num_output"] = n
    return model


@pytest.mark.parametrize("cut, layer, per_filter", [("pool1", "conv1", 16 * 16), ("pool2", "conv2", 8 * 8)])
@pytest.mark.parametrize("filters", [4, 8, 16, 32])
def test_uint8_bytes_per_batch_are_the_papers_table_3(cifar10_full, cut, layer, per_filter, filters):
    split = split_model(_with_filters(cifar10_full, layer, filters), [cut])
    values = int(numpy.prod(split.shapes[0]))
    assert values == 100 * filters * per_filter  # one byte each as uint8: f = 4 -> 102,400 / 25,600
    if filters == 4:
        assert values == {"pool1": 102400, "pool2": 25600}[cut]


def test_cutting_at_the_images_is_cloud_only_with_raw_bytes(cifar10_full):
    split = split_model(cifar10_full, ["data"])
    assert int(numpy.prod(split.shapes[0])) == 307200
    assert [layer.type for layer in split.client_layers] == ["Input"]


def test_pool1_cut_keeps_the_in_place_relu_on_the_client(cifar10_full):
    split = split_model(cifar10_full, ["pool1"], host="cloud.example", port=4000)
    assert [layer.name for layer in split.client_layers] == ["cifar", "conv1", "pool1", "relu1"]
    sink = split.client["layers"][-1]
    assert sink == {"name": "sink_pool1", "type": "Sink", "bottom": ["pool1"],
                    "sink_param": {"host_name": "cloud.example", "port": 4000, "pair": 0}}
    source = split.cloud["layers"][0]
    assert source["source_param"] == {"port": 4000, "pair": 0, "shape": [100, 32, 16, 16]}
    cloud = Net(split.cloud, phase="TEST", init=False)
    assert cloud.output_names == ["ip1"]  # loss and accuracy stay with the labels on the client
    assert "label" not in cloud.blob_shapes


def test_unknown_blob_is_named(cifar10_full):
    with pytest.raises(ConfigError, match="unknown blob 'pool9'.*blobs of the net: data, label, conv1"):
        split_model(cifar10_full, ["pool9"])


def test_a_cut_that_leaves_nothing_for_the_cloud(cifar10_full):
    with pytest.raises(ConfigError, match="nothing is left for the cloud"):
        split_model(cifar10_full, ["ip1"])


def test_a_cut_blob_the_cloud_does_not_read(cifar10_full):
    with pytest.raises(ConfigError, match="'pool1' is not read by the cloud side"):
        split_model(cifar10_full, ["pool1", "pool2"])


def test_one_cut_through_a_branch_does_not_separate_the_net(pipe):
    with pytest.raises(ConfigError, match="does not separate.*layer 'b' \\(cloud side\\) reads blob 'conv1'"):
        split_model(pipe.branchy_model(), ["a"])


def test_two_cut_links_in_a_branchy_net(pipe):
    split = split_model(pipe.branchy_model(), ["a", "b"])
    assert split.pairs == [0, 1] and split.shapes == [(4, 3, 8, 8), (4, 2, 8, 8)]
    client = Net(split.client, phase="TEST", init=False)
    assert [(s.pair, s.bottoms) for s in client.layers if s.type == "Sink"] == [(0, ["a"]), (1, ["b"])]
    cloud = Net(split.cloud, phase="TEST", init=False)
    assert cloud.input_names == ["a", "b"]
    # the single cut at conv1 (before the branch) is valid too
    assert split_model(pipe.branchy_model(), ["conv1"]).shapes == [(4, 4, 8, 8)]


def test_an_already_split_net_is_refused(cifar10_full):
    split = split_model(cifar10_full, ["pool1"])
    with pytest.raises(ConfigError, match="already split"):
        split_model(split.cloud, ["norm1"])
