"""The layer library: one module per layer family, each with its shape template and lowering."""
from .aggregation import AggregationLayer, SummationLayer
from .attention import AttentionLayer, BilinearScoringLayer, DotScoringLayer
from .base import ArraySpec, Layer, LayerOptions
from .catenate import CatenateLayer
from .convolution import ConvolutionLayer
from .dot import DotLayer
from .dropout import DropoutLayer
from .elementwise import ElementwiseLayer
from .embedding import EmbeddingLayer
from .linear import LinearLayer
from .normalization import BatchNormalizationLayer, NormalizationLayer
from .loss import CrossEntropyLossLayer, MeanAbsoluteLossLayer, MeanSquaredLossLayer
from .options import All, Inherited
from .recurrent import BasicRecurrentLayer, GatedRecurrentLayer, LongShortTermMemoryLayer
from .recurrent_operators import NetBidirectionalOperator, NetFoldOperator, NetNestOperator
from .pooling import PoolingLayer
from .reshape import FlattenLayer, ReplicateLayer, ReshapeLayer, TransposeLayer
from .scaling import ConstantTimesLayer, NetArrayLayer
from .sequence import NetMapOperator, SequenceLastLayer
from .sequence import SequenceIndicesLayer, SequenceMostLayer, SequenceRestLayer, SequenceReverseLayer
from .parts import (AppendLayer, OrderingLayer, PaddingLayer, PartLayer, PrependLayer,
                    UnitVectorLayer)
from .softmax import SoftmaxLayer
from .threading import ThreadingLayer, TotalLayer

__all__ = [
    "AggregationLayer", "All", "AttentionLayer", "BatchNormalizationLayer", "BilinearScoringLayer", "DotScoringLayer", "ArraySpec", "CatenateLayer", "ConstantTimesLayer",
    "ConvolutionLayer", "DotLayer", "DropoutLayer", "ElementwiseLayer", "EmbeddingLayer",
    "FlattenLayer", "Inherited", "Layer", "LayerOptions", "LinearLayer", "NetArrayLayer",
    "NetMapOperator", "NormalizationLayer", "PoolingLayer", "ReplicateLayer", "ReshapeLayer", "SequenceLastLayer", "SoftmaxLayer",
    "SummationLayer", "ThreadingLayer", "TotalLayer", "TransposeLayer",
    "CrossEntropyLossLayer", "MeanAbsoluteLossLayer", "MeanSquaredLossLayer",
    # parts
    "SequenceIndicesLayer", "SequenceMostLayer", "SequenceRestLayer", "SequenceReverseLayer",
    "AppendLayer", "OrderingLayer", "PaddingLayer", "PartLayer", "PrependLayer", "UnitVectorLayer",
    "BasicRecurrentLayer", "GatedRecurrentLayer", "LongShortTermMemoryLayer",
    "NetBidirectionalOperator", "NetFoldOperator", "NetNestOperator",
]
