"""A tiny job on the built-in shapes data and checkpoints of it (random weights: the numbers are what is tested)."""
import pytest
import yaml

TINY = {
    "name": "tiny",
    "model": {"layers": [
        {"name": "data", "type": "Input", "top": ["data", "label"],
         "input_param": {"shape": [{"dim": [8, 3, 16, 16]}, {"dim": [8]}]}},
        {"name": "conv1", "type": "Convolution", "bottom": "data", "top": "conv1",
         "convolution_param": {"num_output": 6, "kernel_size": 3, "weight_filler": {"type": "msra"},
                               "bias_filler": {"type": "gaussian", "std": 0.1}}},
        {"name": "relu1", "type": "ReLU", "bottom": "conv1", "top": "conv1"},
        {"name": "pool1", "type": "Pooling", "bottom": "conv1", "top": "pool1",
         "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}},
        {"name": "ip1", "type": "InnerProduct", "bottom": "pool1", "top": "ip1",
         "inner_product_param": {"num_output": 10, "weight_filler": {"type": "xavier"},
                                 "bias_filler": {"type": "gaussian", "std": 0.1}}},
        {"name": "accuracy", "type": "Accuracy", "bottom": ["ip1", "label"], "top": "accuracy",
         "include": {"phase": "TEST"}},
        {"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["ip1", "label"], "top": "loss"}]},
    "solver": {"base_lr": 0.01, "max_iter": 10},
    "data": {"source": "shapes", "image_size": 16, "train_count": 64, "test_count": 50, "batch_size": 8,
             "test_batch_size": 10, "mean": "channel", "scale": 0.02},
}


def write_tiny(folder, seed=1, name="tiny", num_output=10):
    """(config path, weights path) of the tiny job with weights drawn from ``seed``."""
    import copy

    import minwa
    from minwa.checkpoint import save_checkpoint

    raw = copy.deepcopy(TINY)
    raw["name"] = name
    raw["model"]["layers"][4]["inner_product_param"]["num_output"] = num_output
    config = folder / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    weights = folder / f"{name}-{seed}.h5"
    save_checkpoint(str(weights), minwa.Net(minwa.load_config(str(config)).model, seed=seed))
    return str(config), str(weights)


@pytest.fixture
def tiny(tmp_path):
    return write_tiny(tmp_path)


@pytest.fixture
def tiny_pair(tmp_path):
    return write_tiny(tmp_path, seed=1, name="a"), write_tiny(tmp_path, seed=2, name="b")
