"""Stream ingest: read (PyAV), sample (1 fps), chunk (16 frames), reconnect, backpressure.

Pure Python threads, no Ray: an actor shell wraps `CameraIngest`; one-shot file analysis
uses `iter_chunks`. Config mapping (pydantic -> IngestOptions) belongs to the service.
"""

from pipeline.ingest.backpressure import BoundedChunkQueue
from pipeline.ingest.errors import (
    IngestError,
    StreamOpenError,
    StreamReadError,
    StreamStalledError,
    UnsupportedSchemeError,
    mask_url,
)
from pipeline.ingest.options import IngestOptions
from pipeline.ingest.reader import DecodedFrame, StreamInfo, StreamReader, is_live
from pipeline.ingest.sampler import FrameSampler
from pipeline.ingest.supervisor import CameraIngest, iter_chunks

__all__ = [
    "BoundedChunkQueue",
    "CameraIngest",
    "DecodedFrame",
    "FrameSampler",
    "IngestError",
    "IngestOptions",
    "StreamInfo",
    "StreamOpenError",
    "StreamReadError",
    "StreamReader",
    "StreamStalledError",
    "UnsupportedSchemeError",
    "is_live",
    "iter_chunks",
    "mask_url",
]
