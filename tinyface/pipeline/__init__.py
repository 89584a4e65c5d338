"""The two streams end to end: data split, teacher and student training, evaluation.

``tinyface.cli`` commands and the tutorials call these functions; they hold the logic
so that scripts stay thin.
"""
from tinyface.pipeline.split import FaceSplit, load_split
from tinyface.pipeline.streams import (evaluate_identification, load_stream, stream_images,
                                       train_stream)

__all__ = ["FaceSplit", "load_split", "train_stream", "load_stream", "stream_images",
           "evaluate_identification"]
