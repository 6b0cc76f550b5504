"""Stored videos measured and previewed: probe an MP4 in storage, make its variants.

Everything reads the stored object in ranges (S3 or local disk alike) and decodes in a
thread; nothing holds a whole video in memory.
"""

from __future__ import annotations

from core.media.derive import MediaFacts, inspect_and_derive
from core.media.facts import InvalidVideo, VideoFacts
from core.media.probe import probe

__all__ = ["InvalidVideo", "MediaFacts", "VideoFacts", "inspect_and_derive", "probe"]
