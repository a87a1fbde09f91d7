"""Recordings: each camera's packets remuxed (never re-encoded) into segment files under
the data dir, their retention, and clips cut from them at keyframes.

`config` (the `record` settings), `layout` (segment files on disk, retention plans),
`writer` (muxing one camera's packets into segments), `recorder` (the bounded hand-off
from the ingest reader, the modes, errors counted), `clips` (an interval as one MP4),
`budget` (the start-up disk check). No Ray here.
"""
