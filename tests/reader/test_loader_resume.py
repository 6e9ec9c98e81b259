"""The training stream is a pure function of its seed (reader/loader.py): started at batch k
it reads exactly what it reads after k batches, and split over any number of processes the
parts together are exactly the whole batches, so a resumed job sees no sample twice in an
epoch and skips none, whatever its number of workers."""
import numpy as np

from reader.crop import random_crop_and_flip
from reader.loader import BatchStream


def load(index):
    """Sample ``index``: a 6 x 8 image of random values keyed by the index, flow = index."""
    rng = np.random.default_rng(index)
    img = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return img, img, np.full((6, 8, 2), index, np.float32), None


def slots():
    # three slots: a dataset of 5 samples twice, one of 3 (different epoch lengths)
    return [(list(range(5)), load)] * 2 + [(list(range(100, 103)), load)]


def read(count, start=0, part=(0, 1), seed=11):
    with BatchStream(slots(), 6, lambda e, rng, name: random_crop_and_flip(e, (4, 6), rng, name),
                     seed=seed, start=start, part=part) as stream:
        return [next(stream) for _ in range(count)]


def same(a, b):
    assert [x.names for x in a] == [y.names for y in b]
    for x, y in zip(a, b):
        for field in ('img1', 'img2', 'flow'):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field))


def test_a_stream_started_at_batch_k_reads_what_it_reads_after_k_batches():
    whole = read(9)
    same(read(5, start=4), whole[4:])
    same(read(1, start=8), whole[8:])


def test_the_parts_of_any_number_of_processes_are_the_whole_batches():
    whole = read(6, start=3)
    for count in (1, 3):
        parts = [read(6, start=3, part=(k, count)) for k in range(count)]
        joined = [type(batch)(*[np.concatenate([getattr(p[i], f) for p in parts])
                                for f in ('img1', 'img2', 'flow')], None,
                              [n for p in parts for n in p[i].names])
                  for i, batch in enumerate(whole)]
        same(joined, whole)


def test_every_epoch_draws_each_sample_once_and_epochs_differ():
    batches = read(10)   # slot 0 and 1: 2 samples each a batch, 20 items = 4 epochs of 5
    first_slot = [name for b in batches for name in b.names[:2]]
    epochs = [first_slot[k:k + 5] for k in range(0, 20, 5)]
    for epoch in epochs:
        assert sorted(epoch) == ['0', '1', '2', '3', '4']
    assert len({tuple(e) for e in epochs}) > 1   # reshuffled each epoch


def test_another_seed_is_another_stream():
    a, b = read(3, seed=1), read(3, seed=2)
    assert [x.names for x in a] != [y.names for y in b] or not np.array_equal(a[0].img1, b[0].img1)
