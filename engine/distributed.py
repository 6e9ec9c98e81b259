"""Training as one of several worker processes of MXNet's parameter-server kvstore
(``--kvstore dist_*``, started by ``launch.py``), or as one process (``device``, ``local``):
which worker this process is, the kvstore it joins, and how its steps' augmentation is seeded.
"""
import os
from dataclasses import dataclass

import numpy as np

from common.errors import UserError

KVSTORES = ('device', 'local', 'dist_sync', 'dist_device_sync', 'dist_async')


@dataclass(frozen=True)
class Workers:
    """This process's place among the training processes: worker ``rank`` of ``count``."""
    rank: int = 0
    count: int = 1
    kvstore: str = 'device'

    @property
    def lead(self):
        """Worker 0 alone writes logs, validation results and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self):
        return self.kvstore.startswith('dist')


def check_launched(kvstore):
    """A process that a launcher started as part of a job (DMLC_ROLE is set) must join it
    through a distributed kvstore: otherwise every worker trains alone, and the servers and
    the scheduler wait for workers that never come. Checked before MXNet loads (a server
    process starts serving when it does)."""
    role = os.environ.get('DMLC_ROLE')
    if role and not kvstore.startswith('dist'):
        raise UserError('--kvstore %s: this process was started by a launcher as a %s of a '
                        'distributed job (DMLC_ROLE=%s); give --kvstore dist_sync, '
                        'dist_device_sync or dist_async' % (kvstore, role, role))


def open_kvstore(name='device'):
    """(kvstore for gluon.Trainer, Workers) for ``--kvstore name``.

    ``device`` and ``local`` stay in this process (Gluon creates them when there are several
    devices). The ``dist_*`` kinds join the parameter-server job whose scheduler the DMLC_*
    variables name (launch.py sets them); this blocks until every worker and server has joined.
    """
    if name not in KVSTORES:
        raise UserError('--kvstore %s: expected one of %s' % (name, ', '.join(KVSTORES)))
    if not name.startswith('dist'):
        return name, Workers(kvstore=name)
    if os.environ.get('DMLC_ROLE') != 'worker' or 'DMLC_PS_ROOT_URI' not in os.environ:
        raise UserError('--kvstore %s: this process is not a worker of a distributed job; start '
                        'it with launch.py (python launch.py -n WORKERS -s SERVERS --launcher '
                        'local python main.py ...)' % name)
    import mxnet as mx   # here: main.py reads KVSTORES before the process is set up for MXNet
    kvstore = mx.kv.create(name)
    return kvstore, Workers(kvstore.rank, kvstore.num_workers, name)


# A kvstore key of its own, far from the parameters' (Gluon's trainer numbers them from 0).
SEED_KEY = 9999991


def shared_seed(kvstore, workers, seed):
    """Worker 0's ``seed``, for every worker of a distributed job: each draws its own when
    --seed gives none, and they must read one stream (and record one seed). The servers keep
    the value worker 0 initialises a key with; the seed travels as two 16-bit halves (exact in
    float32)."""
    if not workers.distributed:
        return seed
    import mxnet as mx
    kvstore.init(SEED_KEY, mx.nd.array(divmod(seed, 2 ** 16)))
    halves = mx.nd.zeros(2)
    kvstore.pull(SEED_KEY, out=halves)
    high, low = (int(v) for v in halves.asnumpy())
    return high * 2 ** 16 + low


def augmentation_seed(seed, rank, steps):
    """MXNet's seed for the network-side augmentation of training step ``steps`` on worker
    ``rank``: each step draws from its own seed, so that a resumed run draws exactly what the
    uninterrupted one did, and no two workers augment their samples identically. (Every worker
    seeds MXNet alike with the run's seed before building the network, so all start from the
    same weights.)"""
    return int(np.random.SeedSequence([seed, rank, steps]).generate_state(1)[0] % 2 ** 31)
