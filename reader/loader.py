"""Streaming training batches: samples are read from disk on demand by worker threads.

Memory is bounded by the queues (a few batches), not by the dataset size: nothing is loaded
up front, unlike the original, which read whole datasets into RAM.

A batch is built from *slots*, one per sample position (e.g. Sintel, Sintel, KITTI, HD1K for
``sintel_kitti2015_hd1k.yaml``): each slot draws from its own dataset in its own shuffled order,
as the original's per-slot reader threads did, so the per-batch mix of datasets is kept.

The stream is a pure function of its seed: a slot's order in each epoch and the random crop
and mirror of each item are drawn from generators keyed by (seed, slot, epoch, position), not
from one generator that the threads' reading ahead would advance. So the stream after ``n``
batches is known without its history: a resumed run starts it there (``start``) and reads
exactly what the uninterrupted run would have read, and the processes of a distributed job
(each reading its slots) read exactly the parts of the batches one process would read.
"""
import queue
import threading
import time
from typing import List, NamedTuple, Optional

import numpy as np

from common.errors import UserError


class Batch(NamedTuple):
    """One training batch: stacked NCHW arrays and the names of the samples it holds."""
    img1: np.ndarray
    img2: np.ndarray
    flow: np.ndarray
    mask: Optional[np.ndarray]   # None when the datasets have no valid masks
    names: List[str]


def sample_name(sample):
    return getattr(sample, 'name', str(sample))


class _Failure:
    def __init__(self, error):
        self.error = error


class BatchStream:
    """Iterator over training ``Batch``es of stacked NCHW arrays.

    ``slots``: a list of ``(samples, load)`` pairs, one per sample position in a batch, where
    ``load(sample)`` returns ``(img1, img2, flow, mask_or_None)`` HWC arrays. ``batch_size``
    must be a multiple of the number of slots. ``transform(example, rng, name)`` turns a loaded
    sample into CHW arrays of one shape (the training crop and mirror of
    ``reader.crop.random_crop_and_flip``), drawing from the item's ``rng``.

    ``part=(index, count)``: yield only part ``index`` of ``count`` equal parts of each batch
    (the slots of that part), as one of ``count`` training processes does. Every slot keeps the
    seed it has in the whole batch, so the parts of all processes together are exactly the
    batches one process would read with the same ``seed``.

    ``start``: the number of batches already read (a resumed run): the stream goes on from
    there as if it had read them.
    """

    def __init__(self, slots, batch_size, transform, seed=0, queue_batches=2, part=(0, 1),
                 start=0):
        if not slots:
            raise UserError('no training data: the dataset config selected no samples')
        if batch_size % len(slots):
            raise UserError('batch %d is not a multiple of the %d dataset slots'
                            % (batch_size, len(slots)))
        for samples, _ in slots:
            if not samples:
                raise UserError('a training dataset has no samples (check its root folder)')
        index, count = part
        if len(slots) % count:
            raise UserError('a batch of %d dataset slots cannot be split evenly over %d '
                            'training processes' % (len(slots), count))
        if not isinstance(seed, int) or seed < 0:
            raise ValueError('a stream needs a seed (a non-negative int), got %r' % (seed,))
        self._per_slot = batch_size // len(slots)
        self._seed = seed
        mine = range(index * len(slots) // count, (index + 1) * len(slots) // count)
        self.batch_size = batch_size // count
        self.transform = transform
        self._stop = threading.Event()
        self._queues = [queue.Queue(maxsize=self._per_slot * queue_batches) for _ in mine]
        self._threads = [threading.Thread(target=self._fill,
                                          args=(q, slots[k], k, start * self._per_slot),
                                          daemon=True)
                         for q, k in zip(self._queues, mine)]
        for thread in self._threads:
            thread.start()

    def _put(self, q, item):
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _generator(self, *key):
        """The generator of one draw: keyed by the stream's seed and ``key``."""
        return np.random.default_rng(np.random.SeedSequence(self._seed, spawn_key=key))

    def order(self, slot, epoch, size):
        """The order of the ``size`` samples of ``slot`` in ``epoch``."""
        return self._generator(slot, 0, epoch).permutation(size)

    def _fill(self, q, slot, number, first):
        """Read slot ``number``'s items from its ``first`` on (item i: epoch i // size, the
        (i % size)-th sample of that epoch's order)."""
        samples, load = slot
        try:
            item = first
            while not self._stop.is_set():
                epoch, position = divmod(item, len(samples))
                order = self.order(number, epoch, len(samples))
                for position in range(position, len(samples)):
                    if self._stop.is_set():
                        return
                    index = order[position]
                    name = sample_name(samples[index])
                    rng = self._generator(number, 1, epoch, position)
                    example = self.transform(load(samples[index]), rng, name)
                    if not self._put(q, (name, example)):
                        return
                    item += 1
        except Exception as error:   # handed to the consumer, which raises it
            self._put(q, _Failure(error))

    def __iter__(self):
        return self

    def __next__(self):
        names, items = [], []
        for q in self._queues:
            for _ in range(self._per_slot):
                item = q.get()
                if isinstance(item, _Failure):
                    self.close()
                    raise item.error
                names.append(item[0])
                items.append(item[1])
        widths = {len(item) for item in items}
        if len(widths) != 1:
            raise UserError('cannot batch datasets with and without valid masks together')
        arrays = [np.stack(parts) for parts in zip(*items)]
        return Batch(*arrays, *([None] if len(arrays) == 3 else []), names=names)

    def close(self, timeout=30):
        """Stop the workers and wait for them (at most ``timeout`` s in all).

        Waiting matters: a worker still decoding an image (native code) while the interpreter
        exits can abort the process.
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0., deadline - time.monotonic()))
        for q in self._queues:   # drop what was read ahead
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
