"""reader/video.py: the test videos the damaged-input tests use are what they claim (the CLI
tests are in tests/cli/test_predict_new_data.py)."""
from reader import video
from tests.helpers import VIDEO_FRAMES, decode_video


def test_the_test_videos_are_what_they_claim(damaged_videos):
    assert decode_video(damaged_videos['good']) == (VIDEO_FRAMES, [])
    with video.open_video(damaged_videos['cut']) as capture:
        assert video.frames_announced(capture) == VIDEO_FRAMES
    assert decode_video(damaged_videos['cut'])[0] < VIDEO_FRAMES
