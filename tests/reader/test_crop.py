"""reader/crop.py: the training crop and its random mirror."""
import numpy as np

from reader.crop import random_crop_and_flip


def test_crop_and_flip_mirror_the_width_and_negate_u():
    rng = np.random.default_rng(0)
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    flow = np.stack([np.full((4, 6), 2.0), np.full((4, 6), -1.0)], axis=-1).astype(np.float32)
    flow[0, 0] = (5.0, 7.0)
    seen = set()
    for _ in range(20):
        out = random_crop_and_flip((img, img, flow, None), (4, 6), rng)
        assert len(out) == 3 and out[0].shape == (3, 4, 6)
        if out[0][0, 0, 0] == img[0, 5, 0]:   # mirrored
            seen.add('flip')
            assert out[2][0, 0, 5] == -5.0 and out[2][1, 0, 5] == 7.0 and out[2][0, 1, 1] == -2.0
        else:
            seen.add('plain')
            assert out[2][0, 0, 0] == 5.0 and out[2][1, 1, 1] == -1.0
    assert seen == {'flip', 'plain'}
