"""Stream ingest: read (PyAV), sample (1 fps), chunk (16 frames), reconnect, backpressure,
and the camera's CV analysis (`analysis.CameraAnalysis`: events -> rows and thumbnails).

Pure Python threads, no Ray: the ingest actor wraps `CameraIngest`; one-shot file
analysis uses `iter_chunks`. Nothing is imported here, so that importing a sibling module
(the options, the errors) does not load PyAV.
"""
