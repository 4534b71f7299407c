"""Fold each in-place ReLU into the Convolution or MAX Pooling that writes its blob.

Caffe nets write ReLU in place (``bottom: conv2, top: conv2``), so the pre-ReLU values
are overwritten and nobody can read them. Applying max(x, 0) to each chunk of the
producer's output while it is still in cache, and the ReLU's mask inside the producer's
backward (a skipped window in the MAX kernel, one masked pass in Convolution), saves the
ReLU's own passes and gives the same values bit for bit. A ReLU is folded only when the layer just before it
that touches the blob wrote it (nothing reads the pre-ReLU value) and that layer can
take it (``fuse_relu()`` returns True); the ReLU then passes its blob straight through.
"""


def fuse_in_place_relus(layers):
    """Fold every eligible ReLU of ``layers`` (set up, in forward order); returns the names folded."""
    folded = []
    for index, relu in enumerate(layers):
        if relu.type != "ReLU" or relu.negative_slope != 0 or relu.bottoms != relu.tops or len(relu.tops) != 1:
            continue
        blob = relu.tops[0]
        writer = _last_toucher(layers[:index], blob)
        if writer is None or writer.tops != [blob] or blob in writer.bottoms:
            continue
        fuse = getattr(writer, "fuse_relu", None)
        if fuse is not None and fuse():
            relu.fused_into = writer.name
            folded.append(relu.name)
    return folded


def _last_toucher(layers, blob):
    """The last of ``layers`` that reads or writes ``blob``, or None."""
    for layer in reversed(layers):
        if blob in layer.tops or blob in layer.bottoms:
            return layer
    return None
