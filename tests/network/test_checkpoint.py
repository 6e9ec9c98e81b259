"""The checkpoint contract: names and shapes of the original's .params files, and clear errors."""
import numpy as np
import mxnet as mx
import pytest

from network.checkpoint import expected_shapes, save_checkpoint
from common.config import Config
from common.errors import UserError
from network.pipeline import Pipeline
from tests.helpers import NETWORKS, deterministic_weight, manifest, small_pair, write_modified


def make_pipeline(network):
    return Pipeline(Config({'network': {'class': network}}))


@pytest.mark.parametrize('network', NETWORKS)
def test_parameter_names_and_shapes_match_the_manifest(network):
    assert expected_shapes(make_pipeline(network).network) == dict(manifest(network))


@pytest.mark.slow
@pytest.mark.parametrize('network', NETWORKS)
def test_save_then_load_gives_identical_outputs(network, tmp_path):
    img1, img2 = small_pair()
    first = make_pipeline(network)
    path = tmp_path / 'run_100.params'
    first.save(path)
    second = make_pipeline(network)   # different random initialisation
    before = second.predict_pair(img1, img2)[0]
    second.load(path)
    expected = first.predict_pair(img1, img2)[0]
    assert np.abs(before - expected).max() > 1e-3   # the load really changed something
    np.testing.assert_array_equal(second.predict_pair(img1, img2)[0], expected)
    # The file is a plain Gluon checkpoint: Gluon's own loader reads it too.
    plain = make_pipeline(network).network
    plain.load_parameters(str(path))
    saved = mx.nd.load(str(path))
    assert sorted(saved) == sorted(name for name, _ in manifest(network))


def error_for(network, path):
    with pytest.raises(UserError) as info:
        make_pipeline(network).load(path)
    return str(info.value)


@pytest.mark.slow
def test_checkpoint_of_the_other_network(golden_checkpoint):
    message = error_for('MaskFlownet', golden_checkpoint('MaskFlownet_S'))
    assert str(golden_checkpoint('MaskFlownet_S')) in message
    full, small = dict(manifest('MaskFlownet')), dict(manifest('MaskFlownet_S'))
    assert '%d missing' % len(set(full) - set(small)) in message
    assert '%d unexpected' % len(set(small) - set(full)) in message
    assert '%d wrong shape' % sum(full[n] != small[n] for n in set(full) & set(small)) in message
    assert 'looks like a MaskFlownet_S checkpoint' in message
    message = error_for('MaskFlownet_S', golden_checkpoint('MaskFlownet'))
    assert 'looks like a MaskFlownet checkpoint' in message


def test_missing_extra_and_wrong_shape_are_named(tmp_path):
    path = write_modified(tmp_path / 'a.params', 'MaskFlownet_S', lambda a: a.pop('deform3.bias'))
    message = error_for('MaskFlownet_S', path)
    assert '1 missing: deform3.bias' in message and str(path) in message

    path = write_modified(tmp_path / 'b.params', 'MaskFlownet_S',
                          lambda a: a.update({'conv7a.0.weight': mx.nd.zeros((1,))}))
    assert '1 unexpected: conv7a.0.weight' in error_for('MaskFlownet_S', path)

    path = write_modified(tmp_path / 'c.params', 'MaskFlownet_S',
                          lambda a: a.update({'upfeat5.0.weight': mx.nd.zeros((16, 529, 4, 4))}))
    message = error_for('MaskFlownet_S', path)
    assert 'wrong shape: upfeat5.0.weight (16, 529, 4, 4) (network needs (529, 16, 4, 4))' in message


def test_files_that_are_not_checkpoints(tmp_path):
    assert 'no such file' in error_for('MaskFlownet_S', tmp_path / 'absent.params')
    text = tmp_path / 'notes.params'
    text.write_text('not a checkpoint\n')
    assert 'not an MXNet parameter file' in error_for('MaskFlownet_S', text)
    unnamed = tmp_path / 'list.params'
    mx.nd.save(str(unnamed), [mx.nd.zeros((2,))])
    assert 'holds no named parameters' in error_for('MaskFlownet_S', unnamed)


@pytest.mark.slow
def test_failed_load_leaves_the_network_unchanged(tmp_path):
    pipe = make_pipeline('MaskFlownet_S')
    before = pipe.network.conv1a[0].weight.data().asnumpy().copy()
    path = write_modified(tmp_path / 'bad.params', 'MaskFlownet_S', lambda a: a.pop('pred_flow2.bias'))
    with pytest.raises(UserError):
        pipe.load(path)
    np.testing.assert_array_equal(pipe.network.conv1a[0].weight.data().asnumpy(), before)


def test_load_head_and_fix_head(golden_checkpoint):
    pipe = make_pipeline('MaskFlownet')
    pipe.load_head(golden_checkpoint('MaskFlownet_S'))
    head_weight = pipe.network.head.deform4.weight.data().asnumpy()
    np.testing.assert_array_equal(head_weight, deterministic_weight('deform4.weight', (96, 96, 3, 3)))
    pipe.fix_head()
    head = set(pipe.network.head.collect_params().values())
    for param in pipe.network.collect_params().values():
        assert param.grad_req == ('null' if param in head else 'write'), param.name
    with pytest.raises(UserError, match='looks like a MaskFlownet checkpoint'):
        pipe.load_head(golden_checkpoint('MaskFlownet'))
    with pytest.raises(UserError, match='no MaskFlownet_S head'):
        make_pipeline('MaskFlownet_S').load_head(golden_checkpoint('MaskFlownet_S'))


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    pipe = make_pipeline('MaskFlownet_S')
    path = tmp_path / 'run_5000.params'
    pipe.save(path)
    good = path.read_bytes()

    def broken_save(filename, *args, **kwargs):
        with open(filename, 'wb') as f:
            f.write(b'half a checkpoint')
        raise KeyboardInterrupt

    monkeypatch.setattr(pipe.network, 'save_parameters', broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(pipe.network, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ['run_5000.params']


def test_a_checkpoint_with_non_finite_values_is_refused_on_load(tmp_path, golden_checkpoint):
    good = make_pipeline('MaskFlownet_S')
    good.load(golden_checkpoint('MaskFlownet_S'))
    before = good.network.conv1a[0].weight.data().asnumpy().copy()

    def poison(arrays):
        arrays['pred_flow2.weight'][0] = np.nan
    bad = write_modified(tmp_path / 'nan_0.params', 'MaskFlownet_S', poison)
    with pytest.raises(UserError, match=r'nan_0\.params: 1 parameter\(s\) hold NaN or infinite '
                                        r'values: pred_flow2\.weight'):
        good.load(bad)
    np.testing.assert_array_equal(good.network.conv1a[0].weight.data().asnumpy(), before)


def test_non_finite_weights_are_never_saved(tmp_path):
    pipe = make_pipeline('MaskFlownet_S')
    weight = pipe.network.conv6_0[0].weight
    weight.set_data(weight.data() * np.inf)
    with pytest.raises(UserError, match=r'x_7\.params not written: 1 parameter\(s\) hold NaN or '
                                        r'infinite values: conv6_0\.0\.weight'):
        pipe.save(tmp_path / 'x_7.params')
    assert list(tmp_path.iterdir()) == []


def test_a_disk_full_inside_mxnets_writer_is_one_line(tmp_path, monkeypatch):
    pipe = make_pipeline('MaskFlownet_S')
    # MXNet's own writer on a full disk: /dev/full fails every write with ENOSPC.
    monkeypatch.setattr(pipe.network, 'save_parameters',
                        lambda filename: mx.nd.save('/dev/full', {'a': mx.nd.ones((4096, 256))}))
    with pytest.raises(UserError) as info:
        save_checkpoint(pipe.network, tmp_path / 'run_1.params')
    message = str(info.value)
    assert message.startswith('%s: cannot write (' % (tmp_path / 'run_1.params'))
    assert 'Write incomplete: disk full?' in message and '\n' not in message
    assert list(tmp_path.iterdir()) == []


