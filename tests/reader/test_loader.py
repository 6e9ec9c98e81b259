"""reader/loader.py: per-slot streams, the per-batch dataset mix, errors and shutdown."""
import threading

import numpy as np
import pytest

from common.errors import UserError
from reader.crop import random_crop_and_flip
from reader.loader import BatchStream


def crop(shape):
    return lambda example, rng, name: random_crop_and_flip(example, shape, rng, name)


def constant_loader(value, with_mask=False):
    """Samples are ints; loading gives 4x6 arrays filled with the dataset's value and the index."""
    def load(index):
        img = np.full((4, 6, 3), value, np.uint8)
        flow = np.full((4, 6, 2), index, np.float32)
        mask = np.full((4, 6, 1), 255, np.uint8) if with_mask else None
        return img, img, flow, mask
    return load


def test_each_batch_keeps_the_dataset_mix_and_draws_every_sample():
    slots = [(list(range(5)), constant_loader(10, True))] * 2 + [(list(range(3)), constant_loader(20, True))]
    seen = set()
    with BatchStream(slots, 3, crop((4, 6)), seed=0) as stream:
        for _ in range(10):
            img1, img2, flow, mask, names = next(stream)
            assert len(names) == 3
            assert img1.shape == (3, 3, 4, 6) and flow.shape == (3, 2, 4, 6) and mask.shape == (3, 1, 4, 6)
            assert list(img1[:, 0, 0, 0]) == [10, 10, 20]   # two of the first dataset, one of the second
            seen.update(np.abs(flow[:2, 0, 0, 0]).astype(int).tolist())
    assert seen == set(range(5))


def test_a_bad_sample_surfaces_as_the_loaders_error_and_the_threads_stop():
    def broken(index):
        raise UserError('sample_%d.flo: truncated payload' % index)
    before = threading.active_count()
    stream = BatchStream([(list(range(4)), broken)], 1, crop((4, 6)), seed=0)
    with pytest.raises(UserError, match='truncated payload'):
        next(stream)
    for thread in stream._threads:
        thread.join(timeout=5)
    assert threading.active_count() == before


def test_samples_smaller_than_the_crop_and_bad_batches_are_refused():
    with pytest.raises(UserError, match='smaller than the training crop'):
        with BatchStream([(list(range(2)), constant_loader(1))], 1, crop((8, 6)), seed=0) as stream:
            next(stream)
    with pytest.raises(UserError, match='not a multiple of the 2 dataset slots'):
        BatchStream([([0], constant_loader(1))] * 2, 3, crop((4, 6)))
    with pytest.raises(UserError, match='has no samples'):
        BatchStream([([], constant_loader(1))], 1, crop((4, 6)))


def first_batches(seed, count=4):
    slots = [(list(range(50)), constant_loader(1))]
    with BatchStream(slots, 2, crop((4, 6)), seed=seed) as stream:
        return [next(stream) for _ in range(count)]


def test_the_seed_fixes_the_sample_order_and_the_mirroring():
    same = [first_batches(7), first_batches(7)]
    for a, b in zip(*same):
        assert a.names == b.names
        np.testing.assert_array_equal(a.flow, b.flow)
    other = first_batches(8)
    assert [b.names for b in same[0]] != [b.names for b in other]


def test_batches_name_their_samples_in_slot_order():
    slots = [(['a%d' % i for i in range(3)], lambda s: constant_loader(1)(0))] + \
            [(['b%d' % i for i in range(3)], lambda s: constant_loader(2)(0))]
    with BatchStream(slots, 4, crop((4, 6)), seed=0) as stream:
        batch = next(stream)
    assert [n[0] for n in batch.names] == ['a', 'a', 'b', 'b'] and batch.mask is None
    assert list(batch.img1[:, 0, 0, 0]) == [1, 1, 2, 2]


def test_the_parts_of_a_batch_are_the_slices_of_the_whole_batch():
    """Each of several training processes reads only its part; together they read exactly the
    batches (samples, crops, mirroring) one process reads with the same seed."""
    slots = [(list(range(20)), constant_loader(k)) for k in range(4)]
    with BatchStream(slots, 4, crop((4, 6)), seed=3) as whole:
        batches = [next(whole) for _ in range(3)]
    for index in (0, 1):
        with BatchStream(slots, 4, crop((4, 6)), seed=3, part=(index, 2)) as part:
            for batch in batches:
                mine = next(part)
                assert mine.names == batch.names[2 * index:2 * index + 2]
                np.testing.assert_array_equal(mine.img1, batch.img1[2 * index:2 * index + 2])
                np.testing.assert_array_equal(mine.flow, batch.flow[2 * index:2 * index + 2])
    with pytest.raises(UserError, match='4 dataset slots cannot be split evenly over 3'):
        BatchStream(slots, 4, crop((4, 6)), part=(0, 3))


# --- a pure function of the seed: resumes and parts ------------------------------------------

def keyed_load(index):
    """Sample ``index``: a 6 x 8 image of random values keyed by the index, flow = index."""
    rng = np.random.default_rng(index)
    img = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return img, img, np.full((6, 8, 2), index, np.float32), None


def resume_slots():
    # three slots: a dataset of 5 samples twice, one of 3 (different epoch lengths)
    return [(list(range(5)), keyed_load)] * 2 + [(list(range(100, 103)), keyed_load)]


def read_batches(count, start=0, part=(0, 1), seed=11):
    with BatchStream(resume_slots(), 6, lambda e, rng, name: random_crop_and_flip(e, (4, 6), rng, name),
                     seed=seed, start=start, part=part) as stream:
        return [next(stream) for _ in range(count)]


def same(a, b):
    assert [x.names for x in a] == [y.names for y in b]
    for x, y in zip(a, b):
        for field in ('img1', 'img2', 'flow'):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field))


def test_a_stream_started_at_batch_k_reads_what_it_reads_after_k_batches():
    whole = read_batches(9)
    same(read_batches(5, start=4), whole[4:])
    same(read_batches(1, start=8), whole[8:])


def test_the_parts_of_any_number_of_processes_are_the_whole_batches():
    whole = read_batches(6, start=3)
    for count in (1, 3):
        parts = [read_batches(6, start=3, part=(k, count)) for k in range(count)]
        joined = [type(batch)(*[np.concatenate([getattr(p[i], f) for p in parts])
                                for f in ('img1', 'img2', 'flow')], None,
                              [n for p in parts for n in p[i].names])
                  for i, batch in enumerate(whole)]
        same(joined, whole)


def test_every_epoch_draws_each_sample_once_and_epochs_differ():
    batches = read_batches(10)   # slot 0 and 1: 2 samples each a batch, 20 items = 4 epochs of 5
    first_slot = [name for b in batches for name in b.names[:2]]
    epochs = [first_slot[k:k + 5] for k in range(0, 20, 5)]
    for epoch in epochs:
        assert sorted(epoch) == ['0', '1', '2', '3', '4']
    assert len({tuple(e) for e in epochs}) > 1   # reshuffled each epoch


def test_another_seed_is_another_stream():
    a, b = read_batches(3, seed=1), read_batches(3, seed=2)
    assert [x.names for x in a] != [y.names for y in b] or not np.array_equal(a[0].img1, b[0].img1)
