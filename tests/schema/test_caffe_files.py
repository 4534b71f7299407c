"""The prototxt reader's repeated-field table comes from the declared schema."""
from minwa.prototxt import parse_prototxt
from minwa.schema.caffe_files import repeated_fields


def test_the_table_holds_caffes_repeated_fields():
    table = repeated_fields()
    assert {"layer", "layers", "input", "input_dim", "stepvalue", "test_iter", "weights"} <= table[""]
    assert {"bottom", "top", "loss_weight", "param", "include", "exclude", "propagate_down"} <= table["layer"]
    assert {"blobs_lr", "weight_decay"} <= table["layers"] - table["layer"]
    assert table["convolution_param"] == {"kernel_size", "stride", "pad", "dilation"}
    assert "kernel_size" not in table["pooling_param"]  # single in Caffe's PoolingParameter
    assert table["eltwise_param"] == {"coeff"} and table["transform_param"] == {"mean_value"}
    assert {"stage", "not_stage"} <= table["include"] and table["shape"] == {"dim"}


def test_repeated_fields_given_once_are_lists():
    parsed = parse_prototxt('layer { name: "c" type: "Convolution" bottom: "x" top: "y" '
                            'convolution_param { kernel_size: 3 } } layer { name: "p" type: "Pooling" '
                            'pooling_param { kernel_size: 2 } }')
    conv, pool = parsed["layer"]
    assert conv["bottom"] == ["x"] and conv["convolution_param"]["kernel_size"] == [3]
    assert pool["pooling_param"]["kernel_size"] == 2
