"""reader/video.py: the test videos the damaged-input tests use are what they claim (the CLI
tests are in tests/cli/test_predict_new_data.py)."""
import pytest

from reader import video
from tests.helpers import VIDEO_FRAMES, decode_video


@pytest.mark.slow
def test_the_test_videos_are_what_they_claim(damaged_videos):
    assert decode_video(damaged_videos['good']) == (VIDEO_FRAMES, [])
    with video.open_video(damaged_videos['cut']) as capture:
        assert video.frames_announced(capture) == VIDEO_FRAMES
    assert decode_video(damaged_videos['cut'])[0] < VIDEO_FRAMES


@pytest.mark.slow
def test_a_video_that_cannot_open_says_why_in_one_line(damaged_videos, tmp_path, capfd):
    import pytest
    from common.errors import UserError
    data = damaged_videos['good'].read_bytes()
    cut = tmp_path / 'no_moov.mp4'
    cut.write_bytes(data[:len(data) // 2])   # the index (moov) is at the end of this file
    with pytest.raises(UserError, match=r'no_moov.mp4: cannot open video \(corrupt or '
                                        r'unsupported format; the decoder says: .*moov atom'):
        with video.open_video(cut):
            pass
    assert capfd.readouterr() == ('', '')
