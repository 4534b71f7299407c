"""A PyTorch module equivalent to a minwa/Caffe layer list, for benchmarks only (torch is optional)."""
from torch import nn


class _WithinChannelLRN(nn.Module):
    """Caffe's LRN WITHIN_CHANNEL: x * (1 + alpha * mean_{k x k}(x^2))^-beta (zero padded)."""

    def __init__(self, size, alpha, beta):
        super().__init__()
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x):
        mean = nn.functional.avg_pool2d(x * x, self.size, 1, (self.size - 1) // 2, count_include_pad=True)
        return x * (1.0 + self.alpha * mean).pow(-self.beta)


def build_torch_net(model):
    """(module, input CHW) for a chain of Input/Convolution/Pooling/ReLU/LRN/InnerProduct/Dropout layers."""
    layers, shape, modules = model["layers"], None, []
    for spec in layers:
        kind = spec["type"]
        opts = spec.get(_key(kind)) or {}
        if kind == "Input":
            shape = list(opts["shape"][0]["dim"][1:])
        elif kind == "Convolution":
            k, pad, stride = opts.get("kernel_size", 1), opts.get("pad", 0), opts.get("stride", 1)
            modules.append(nn.Conv2d(shape[0], opts["num_output"], k, stride, pad, groups=opts.get("group", 1)))
            shape = [opts["num_output"], (shape[1] + 2 * pad - k) // stride + 1, (shape[2] + 2 * pad - k) // stride + 1]
        elif kind == "Pooling":
            k, stride, pad = opts.get("kernel_size"), opts.get("stride", 1), opts.get("pad", 0)
            pool = nn.MaxPool2d if opts.get("pool", "MAX") == "MAX" else nn.AvgPool2d
            modules.append(pool(k, stride, pad, ceil_mode=True))
            size = -(-(shape[1] + 2 * pad - k) // stride) + 1
            shape = [shape[0], size, size]
        elif kind == "ReLU":
            modules.append(nn.ReLU())
        elif kind == "LRN":
            if opts.get("norm_region", "ACROSS_CHANNELS") == "WITHIN_CHANNEL":
                size, alpha, beta = opts.get("local_size", 5), opts.get("alpha", 1.0), opts.get("beta", 0.75)
                modules.append(_WithinChannelLRN(size, alpha, beta))
            else:
                modules.append(nn.LocalResponseNorm(opts.get("local_size", 5), opts.get("alpha", 1.0),
                                                    opts.get("beta", 0.75), opts.get("k", 1.0)))
        elif kind == "InnerProduct":
            if len(shape) > 1:
                modules.append(nn.Flatten())
            fan_in = 1
            for d in shape:
                fan_in *= d
            modules.append(nn.Linear(fan_in, opts["num_output"]))
            shape = [opts["num_output"]]
        elif kind == "Dropout":
            modules.append(nn.Dropout(opts.get("dropout_ratio", 0.5)))
        elif kind in ("SoftmaxWithLoss", "Accuracy"):
            continue
        else:
            return None
    return nn.Sequential(*modules), shape_of_input(layers)


def shape_of_input(layers):
    return tuple(layers[0]["input_param"]["shape"][0]["dim"][1:])


def _key(kind):
    return {"Convolution": "convolution_param", "Pooling": "pooling_param", "LRN": "lrn_param",
            "InnerProduct": "inner_product_param", "Dropout": "dropout_param", "Input": "input_param"}.get(kind, "")
