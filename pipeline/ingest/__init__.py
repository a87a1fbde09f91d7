"""Stream ingest: read (PyAV), sample (1 fps), chunk (16 frames), reconnect, backpressure.

Pure Python threads, no Ray: an actor shell wraps `CameraIngest`.
"""
