"""Whole-model shape rules, from setup alone: cifar10_full and the Deep Image basic model."""
import pytest


def chain(make_layer, input_shape, specs):
    """Set up each layer on the previous layer's output; returns the shapes by layer name."""
    shape, shapes = tuple(input_shape), {}
    for spec in specs:
        _, tops = make_layer(spec, [shape], dtype="float32", allocate=False)
        shape = tops[0]
        shapes[spec["name"]] = shape
    return shapes


def conv(name, n, k, pad):
    return {"type": "Convolution", "name": name, "convolution_param": {"num_output": n, "kernel_size": k, "pad": pad}}


def pool(name, method, k, s):
    return {"type": "Pooling", "name": name, "pooling_param": {"pool": method, "kernel_size": k, "stride": s}}


def lrn(name):
    return {"type": "LRN", "name": name,
            "lrn_param": {"local_size": 3, "alpha": 5e-5, "beta": 0.75, "norm_region": "WITHIN_CHANNEL"}}


def relu(name):
    return {"type": "ReLU", "name": name}


def test_cifar10_full_shapes(make_layer):
    specs = [conv("conv1", 32, 5, 2), pool("pool1", "MAX", 3, 2), relu("relu1"), lrn("norm1"),
             conv("conv2", 32, 5, 2), relu("relu2"), pool("pool2", "AVE", 3, 2), lrn("norm2"),
             conv("conv3", 64, 5, 2), relu("relu3"), pool("pool3", "AVE", 3, 2),
             {"type": "InnerProduct", "name": "ip1", "inner_product_param": {"num_output": 10}}]
    shapes = chain(make_layer, (100, 3, 32, 32), specs)
    assert shapes["conv1"] == (100, 32, 32, 32)
    assert shapes["pool1"] == (100, 32, 16, 16)
    assert shapes["pool2"] == (100, 32, 8, 8)
    assert shapes["pool3"] == (100, 64, 4, 4)
    assert shapes["ip1"] == (100, 10)


@pytest.mark.parametrize("pool_kernel", [2, 3])
def test_deep_image_basic_model_reaches_7x7x512(make_layer, pool_kernel):
    specs, index = [], 0
    for width, repeat in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(repeat):
            index += 1
            specs += [conv(f"conv{index}", width, 3, 1), relu(f"relu{index}")]
        specs.append(pool(f"pool{len(specs)}", "MAX", pool_kernel, 2))
    shapes = chain(make_layer, (2, 3, 224, 224), specs)
    assert list(shapes.values())[-1] == (2, 512, 7, 7)
    fc = {"type": "InnerProduct", "name": "fc1", "inner_product_param": {"num_output": 6144}}
    layer, tops = make_layer(fc, [(2, 512, 7, 7)], dtype="float32", allocate=False)
    assert tops == [(2, 6144)] and layer.weight.shape == (6144, 7 * 7 * 512)
