"""check_labels: the data's labels fit the classes the net scores, checked before any step is run."""
from .errors import ConfigError

#: layers that read a label per position from their second bottom, scores (classes on ``axis``) from the first
_LABELLED = ("SoftmaxWithLoss", "Accuracy")


def check_labels(net, loader, label_blob, split="train"):
    """Raise ConfigError when a label of ``loader``'s source is >= the outputs a loss or accuracy layer scores.

    Without this a 12-class data set on a 10-output net fails at step 0 deep inside
    SoftmaxWithLoss (or, worse, an Accuracy layer silently never counts those samples).
    """
    labels = loader.source.labels()
    if not len(labels):
        return
    highest = int(labels.max())
    for layer in net.layers:
        if layer.type not in _LABELLED or len(layer.bottoms) < 2 or layer.bottoms[1] != label_blob:
            continue
        shape = net.blob_shapes[layer.bottoms[0]]
        axis = getattr(layer, "axis", 1)
        outputs = int(shape[axis])
        if highest >= outputs:
            ignore = getattr(layer, "ignore_label", None)
            if ignore is not None and (labels[labels >= outputs] == ignore).all():
                continue
            raise ConfigError(f"data: the {split} labels go up to {highest} ({highest + 1} classes, "
                              f"{loader.source.name}) but layer {layer.name!r} ({layer.type}) scores "
                              f"{outputs} outputs from {layer.bottoms[0]!r}; set the num_output of the layer "
                              f"producing {layer.bottoms[0]!r} to {highest + 1}")
