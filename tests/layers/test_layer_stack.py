"""Layers chained by the Net: channels-last views, in-place tops and every backward together.

The whole stack is checked in float64 against central differences of the Net's loss,
so a layer that mishandles another layer's output layout (or mutates a shared blob)
shows up here even when each layer passes alone.
"""
import numpy as np

from minwa.net import Net


def stack_model(batch=2):
    def conv(name, bottom, n):
        return {"name": name, "type": "Convolution", "bottom": bottom, "top": name,
                "convolution_param": {"num_output": n, "kernel_size": 3, "pad": 1,
                                      "weight_filler": {"type": "gaussian", "std": 0.5},
                                      "bias_filler": {"type": "gaussian", "std": 0.1}}}

    layers = [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [batch, 3, 7, 7]}, {"dim": [batch]}]}},
        conv("conv1", "data", 4),
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}},
        {"name": "relu1", "type": "ReLU", "bottom": "pool1", "top": "pool1"},
        {"name": "norm1", "type": "LRN", "bottom": "pool1", "top": "norm1",
         "lrn_param": {"local_size": 3, "alpha": 0.5, "beta": 0.75, "norm_region": "WITHIN_CHANNEL"}},
        {"name": "split", "type": "Split", "bottom": "norm1", "top": ["a", "b"]},
        conv("conv2", "a", 4),
        {"name": "bn", "type": "BatchNorm", "bottom": "conv2", "top": "conv2"},
        {"name": "scale", "type": "Scale", "bottom": "conv2", "top": "conv2", "scale_param": {"bias_term": True}},
        {"name": "sum", "type": "Eltwise", "bottom": ["conv2", "b"], "top": "sum"},
        {"name": "lrn2", "type": "LRN", "bottom": "sum", "top": "lrn2", "lrn_param": {"local_size": 3, "alpha": 0.3}},
        {"name": "pool2", "type": "Pooling", "bottom": "lrn2", "top": "pool2",
         "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2}},
        {"name": "ip", "type": "InnerProduct", "bottom": "pool2", "top": "ip",
         "inner_product_param": {"num_output": 3, "weight_filler": {"type": "gaussian", "std": 0.5}}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip", "label"], "top": "loss"},
    ]
    return {"name": "stack", "layers": layers}


def test_stack_shapes_and_layouts():
    net = Net(stack_model(4), dtype="float32")
    assert net.blob_shapes["pool1"] == (4, 4, 3, 3) and net.blob_shapes["pool2"] == (4, 4, 1, 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 7, 7)).astype(np.float32)
    out = net.forward({"data": x, "label": np.array([0, 1, 2, 1])})
    assert out["loss"].dtype == np.float32 and np.isfinite(float(out["loss"]))
    # convolution hands on channels-last memory behind an NCHW view; later blobs keep that order
    conv1 = net.blobs["conv1"]
    assert conv1.shape == (4, 4, 7, 7) and conv1.strides[1] < conv1.strides[3]
    net.backward()
    for p in net.params:
        assert p.grad is not None and p.grad.shape == p.data.shape and p.grad.dtype == np.float32


def test_stack_gradients_match_central_differences():
    net = Net(stack_model(2), dtype="float64", seed=3)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 7))
    feed = {"data": x, "label": np.array([2, 0])}

    def loss():
        net.forward(feed)
        return net.loss

    loss()
    net.backward()
    eps = 1e-6
    checked = 0
    for p in net.params:
        if p.lr_mult == 0:
            continue
        analytic = np.array(p.grad)
        flat = p.data.reshape(-1)
        for k in rng.choice(flat.size, size=min(flat.size, 6), replace=False):
            keep = flat[k]
            flat[k] = keep + eps
            up = loss()
            flat[k] = keep - eps
            down = loss()
            flat[k] = keep
            numeric = (up - down) / (2 * eps)
            assert abs(analytic.reshape(-1)[k] - numeric) <= 1e-6 + 1e-5 * abs(numeric), (p.name, k)
            checked += 1
    assert checked >= 30
    loss()  # the input blob itself is untouched by every layer (in-place tops included)
    np.testing.assert_array_equal(feed["data"], x)
