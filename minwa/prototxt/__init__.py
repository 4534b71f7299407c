"""Caffe .prototxt import: a protobuf text-format reader and the conversion to minwa's dicts.

Caffe describes nets (NetParameter) and solvers (SolverParameter) in protobuf's text
format. minwa reads that format itself (no protobuf dependency): ``parse_prototxt``
turns the text into nested dicts, with a field as a list wherever Caffe's schema
declares it ``repeated`` (layer, bottom, top, param, dim, ...), or wherever it
appears more than once. ``net_to_model`` then maps a NetParameter onto minwa's model
dict (Caffe's schema as YAML), replacing Caffe's data layers by ``Input`` layers and
returning what they said about the data as a separate hint; ``solver_to_dict`` maps
a SolverParameter onto the solver block.
"""
import os

from .data_layers import DATA_LAYER_TYPES
from .net_import import PIPELINE_LAYER_TYPES, net_from_prototxt, net_to_model
from .solver_import import solver_from_prototxt, solver_to_dict
from .text_format import parse_prototxt, read_prototxt

__all__ = ["DATA_LAYER_TYPES", "PIPELINE_LAYER_TYPES", "is_prototxt", "net_from_prototxt", "net_to_model",
           "parse_prototxt", "read_prototxt", "solver_from_prototxt", "solver_to_dict"]


def is_prototxt(path):
    """True for names minwa reads as Caffe text format."""
    return os.path.splitext(str(path))[1].lower() in (".prototxt", ".pbtxt")
