import io

import av
import pytest

from simulator.video import render_mp4


def test_rendered_video_is_a_playable_h264_mp4_of_the_requested_shape():
    data = render_mp4(seconds=1, width=160, height=90)
    assert data[4:8] == b"ftyp"
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 160, 90)
        frames = list(container.decode(video=0))
    assert len(frames) == 24
    assert frames[0].format.name == "yuv420p"


def test_frames_change_over_time():
    data = render_mp4(seconds=0.5, width=64, height=36)
    with av.open(io.BytesIO(data), mode="r") as container:
        planes = [bytes(frame.planes[0]) for frame in container.decode(video=0)]
    assert planes[0] != planes[-1]


def test_odd_dimensions_are_rejected():
    with pytest.raises(ValueError, match="even"):
        render_mp4(width=321)
