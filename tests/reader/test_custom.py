"""reader/custom.py: list files of your own data, checked line by line before any work, and the
samples they give (reader/sample.py's LISTED mask and occlusion maps); pair lists and folders of
frames for prediction; the custom row of reader/mixes.py."""
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.config import load_config
from common.errors import UserError
from reader import custom, flowio, kitti, sintel
from reader.mixes import training_data
from reader.sample import load_occlusion, load_sample

DATA = Path(__file__).resolve().parent.parent / 'data' / 'datasets'
SINTEL = DATA / 'sintel'
KITTI = DATA / 'kitti2015'
H, W = 24, 40


def image(seed, shape=(H, W)):
    return np.random.default_rng(seed).integers(0, 256, shape + (3,), dtype=np.uint8)


def flow(seed, shape=(H, W)):
    return np.random.default_rng(seed).uniform(-20, 20, shape + (2,)).astype(np.float32)


@pytest.fixture
def files(tmp_path):
    """A folder of real-format files: two images, flows of every kind, masks."""
    folder = tmp_path / 'data'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), image(1))
    cv2.imwrite(str(folder / 'b.jpg'), image(2))
    cv2.imwrite(str(folder / 'small.png'), image(3, (H, W - 1)))
    flowio.write_flo(folder / 'f.flo', flow(4))
    flowio.write_pfm(folder / 'f.pfm', flow(5))
    np.save(folder / 'f.npy', flow(6))
    huge = flow(6).astype(np.float64)
    huge[0, 0, 0] = 1e300   # finite as float64, infinite as the float32 it is read as
    np.save(folder / 'huge64.npy', huge)
    kitti_valid = np.ones((H, W), bool)
    kitti_valid[:, :5] = False
    flowio.write_kitti_flow_png(folder / 'f.png', flow(7), kitti_valid)
    flowio.write_flo(folder / 'wide.flo', flow(4, (H, W + 1)))
    nan = flow(8)
    nan[3, 4, 1] = np.nan
    flowio.write_flo(folder / 'nan.flo', nan)
    valid = np.full((H, W), 255, np.uint8)
    valid[:4] = 0
    cv2.imwrite(str(folder / 'valid.png'), valid)
    cv2.imwrite(str(folder / 'valid16.png'), valid.astype(np.uint16) * 257)
    occ = np.zeros((H, W), np.uint8)
    occ[10:, 30:] = 255
    cv2.imwrite(str(folder / 'occ.png'), occ)
    cv2.imwrite(str(folder / 'small_mask.png'), valid[:-1])
    cv2.imwrite(str(folder / 'valid.jpg'), valid)
    return folder


def write_list(folder, text, name='list.txt'):
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize('text, fields', [
    ('a.png b.png f.flo', ['a.png', 'b.png', 'f.flo']),
    ('  a.png\tb.png   f.flo  ', ['a.png', 'b.png', 'f.flo']),
    ("'my frame.png' \"other frame.png\" f.flo", ['my frame.png', 'other frame.png', 'f.flo']),
    (r'my\ frame.png b.png', ['my frame.png', 'b.png']),
    (r'"say \"hi\".png" \\x', ['say "hi".png', '\\x']),
    ("'it''s'", ['its']),
    ('a#b.png c # a comment', ['a#b.png', 'c']),
    ('# only a comment', []),
    ('"#not a comment" x', ['#not a comment', 'x']),
    ('', []),
])
def test_fields_split_as_a_posix_shell_splits_words(text, fields):
    assert custom.split_fields(text) == fields


@pytest.mark.parametrize('text', ['"open', "'open", 'end\\'])
def test_unclosed_quotes_and_trailing_backslashes_are_errors(text):
    with pytest.raises(ValueError):
        custom.split_fields(text)


def test_paths_are_relative_to_the_list_and_line_numbers_are_the_files(files, tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    shutil.copy(files / 'a.png', elsewhere / 'my a.png')
    text = ('# my data\r\n'
            '\n'
            'a.png b.jpg f.flo   # a comment\r\n'
            '   \n'
            '"%s" b.jpg f.pfm - occ.png\n' % (elsewhere / 'my a.png'))
    listed = custom.list_samples(write_list(files, text), progress=False)
    first, second = listed.samples
    assert (first.img1, first.img2, first.flow) == (files / 'a.png', files / 'b.jpg', files / 'f.flo')
    assert first.mask is None and first.occ is None
    assert first.name == first.listed_at == '%s:3' % (files / 'list.txt')
    assert second.img1 == elsewhere / 'my a.png' and second.mask is None
    assert second.occ == files / 'occ.png' and second.listed_at.endswith('list.txt:5')
    assert listed.smallest == (H, W) and listed.key == 'custom.list'


def test_a_byte_order_mark_is_not_part_of_the_first_path(files):
    path = files / 'bom.txt'
    path.write_bytes('\ufeffa.png b.jpg f.flo\n'.encode('utf-8'))
    assert custom.list_samples(path, progress=False).samples[0].img1 == files / 'a.png'
    path.write_bytes(b'a.png b.jpg f.flo\n\xff.png b.jpg f.flo\n')
    with pytest.raises(UserError, match=r'bom\.txt:2: not UTF-8 text'):
        custom.list_samples(path, progress=False)


def test_a_list_in_another_folder_reads_paths_relative_to_its_own_folder(files, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    listed = custom.list_samples(Path('data') / write_list(files, 'a.png b.jpg f.npy\n').name,
                                 progress=False)
    assert load_sample(listed.samples[0]).img1.shape == (H, W, 3)


def expect_list_error(folder, text, *fragments, crop=None):
    path = write_list(folder, text)
    with pytest.raises(UserError) as error:
        custom.list_samples(path, crop=crop, progress=False)
    message = str(error.value)
    assert '\n' not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize('text, line, fragments', [
    ('a.png b.jpg f.flo\n\n# c\nmissing.png b.jpg f.flo\n', 4, ['IMAGE1', 'missing.png', 'file not found']),
    ('a.png b.jpg\n', 1, ['2 fields, expected 3 to 5 (IMAGE1 IMAGE2 FLOW [VALID [OCC]])']),
    ('a.png b.jpg f.flo valid.png occ.png extra\n', 1, ['6 fields, expected 3 to 5']),
    ('\n\na.png b.jpg f.txt\n', 3, ['FLOW', "unsupported flow extension '.txt'"]),
    ('a.png b.jpg f.flo valid.jpg\n', 1, ['VALID', 'must be a PNG']),
    ('a.png small.png f.flo\n', 1, ['IMAGE2', 'is 39x24 but IMAGE1', 'is 40x24',
                                    'must have one size']),
    ('a.png b.jpg wide.flo\n', 1, ['FLOW', 'flow is 41x24 but IMAGE1', 'is 40x24']),
    ('# first\na.png b.jpg nan.flo\n', 2, ['FLOW', 'holds 1 NaN or infinite values']),
    ('a.png b.jpg f.flo small_mask.png\n', 1, ['VALID', 'mask is 40x23 but IMAGE1']),
    ('a.png b.jpg f.flo - small_mask.png\n', 1, ['OCC', 'mask is 40x23']),
    ('- b.jpg f.flo\n', 1, ['IMAGE1 is required, got -']),
    ('"a.png b.jpg f.flo\n', 1, ['unclosed quote']),
    ('my a.png b.jpg f.flo\n', 1, ['IMAGE1', 'my', 'file not found']),   # spaces need quotes
    ('a.png b.jpg data\n', 1, ["unsupported flow extension ''"]),
    ('a.png b.jpg f.flo\na.png b.jpg f\0.flo\n', 2, ['FLOW holds a NUL byte']),
    ('a.png b.jpg huge64.npy\n', 1, ['FLOW', 'holds 1 NaN or infinite values']),
])
def test_bad_lines_give_one_line_naming_the_list_and_the_line(files, text, line, fragments):
    message = expect_list_error(files, text, *fragments)
    assert message.startswith('%s:%d: ' % (files / 'list.txt', line)), message


def test_an_empty_list_and_a_missing_list_are_errors(files):
    expect_list_error(files, '# nothing\n\n   \n', 'list.txt: no samples')
    with pytest.raises(UserError, match='list file not found'):
        custom.list_samples(files / 'nope.txt', progress=False)


def test_a_frame_smaller_than_the_training_crop_is_found_first(files):
    expect_list_error(files, 'a.png b.jpg f.flo\n', 'list.txt:1: IMAGE1', 'smaller than the '
                      'training crop 48x24 (orig_shape [24, 48])', crop=(24, 48))


def test_the_first_bad_line_is_reported_whatever_the_threads_finish_first(files):
    good = 'a.png b.jpg f.pfm\n' * 40
    message = expect_list_error(files, good + 'a.png b.jpg nan.flo\n' + good + 'x.png b.jpg f.flo\n')
    assert message.startswith('%s:41: ' % (files / 'list.txt'))


def test_a_list_is_checked_without_decoding_png_or_jpeg_images(files, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError('an image was decoded')
    monkeypatch.setattr(flowio, 'read_image', no_decoding)
    monkeypatch.setattr(flowio, '_imread', no_decoding)
    listed = custom.list_samples(write_list(files, 'a.png b.jpg f.png valid.png occ.png\n'),
                                 progress=False)
    assert len(listed.samples) == 1


def test_samples_load_as_the_image_pair_command_line_reads_them(files):
    text = ('a.png b.jpg f.flo\n'
            'a.png b.jpg f.pfm valid.png\n'
            'a.png b.jpg f.npy valid16.png occ.png\n'
            'a.png b.jpg f.png valid.png\n')
    samples = custom.list_samples(write_list(files, text), progress=False).samples
    examples = [load_sample(s) for s in samples]
    bgr = cv2.imread(str(files / 'a.png')), cv2.imread(str(files / 'b.jpg'))
    for example in examples:   # OpenCV's BGR, as predict_new_data.py feeds them
        np.testing.assert_array_equal(example.img1, bgr[0])
        np.testing.assert_array_equal(example.img2, bgr[1])
    np.testing.assert_array_equal(examples[0].flow, flow(4))
    np.testing.assert_array_equal(examples[1].flow, flow(5))
    np.testing.assert_array_equal(examples[2].flow, flow(6))
    valid = np.ones((H, W), bool)
    valid[:4] = False
    assert (examples[0].mask == 255).all() and examples[0].mask.shape == (H, W, 1)
    np.testing.assert_array_equal(examples[1].mask[..., 0], valid * 255)
    np.testing.assert_array_equal(examples[2].mask[..., 0], valid * 255)
    # KITTI's own valid bit and the VALID mask together; its invalid pixels carry no flow
    both = valid.copy()
    both[:, :5] = False
    np.testing.assert_array_equal(examples[3].mask[..., 0], both * 255)
    kitti_flow = np.round(flow(7) * 64) / 64
    kitti_flow[:, :5] = 0
    np.testing.assert_allclose(examples[3].flow, kitti_flow, atol=1e-6)
    occluded = np.zeros((H, W), bool)
    occluded[10:, 30:] = True
    np.testing.assert_array_equal(load_occlusion(samples[2]), occluded)
    assert load_occlusion(samples[0]) is None


def test_a_damaged_file_found_while_loading_names_the_list_line(files):
    samples = custom.list_samples(write_list(files, '# x\na.png b.jpg f.flo\n'),
                                  progress=False).samples
    (files / 'f.flo').write_bytes(b'PIEH')
    with pytest.raises(UserError, match=r'list\.txt:2: .*f\.flo'):
        load_sample(samples[0])


def test_sintel_and_kitti_occlusion_ground_truth(tmp_path):
    sample, = sintel.list_samples(SINTEL, 'training', passes=('clean',))
    expected = cv2.imread(str(SINTEL / 'training' / 'occlusions' / 'alley_1' / 'frame_0002.png'),
                          cv2.IMREAD_UNCHANGED) > 0
    np.testing.assert_array_equal(load_occlusion(sample), expected)
    assert 0 < expected.mean() < 0.5

    sample, = kitti.list_samples(KITTI, '2015', 'mixed')
    assert sample.occ is None and load_occlusion(sample) is None   # no flow_noc here
    root = tmp_path / 'kitti'
    shutil.copytree(KITTI, root)
    gt, valid_occ = flowio.read_kitti_flow_png(root / 'training' / 'flow_occ' / '000000_10.png')
    valid_noc = valid_occ.copy()
    valid_noc[:, 600:700] = False
    (root / 'training' / 'flow_noc').mkdir()
    flowio.write_kitti_flow_png(root / 'training' / 'flow_noc' / '000000_10.png', gt, valid_noc)
    sample, = kitti.list_samples(root, '2015', 'mixed')
    np.testing.assert_array_equal(load_occlusion(sample), ~valid_noc)
    cropped, = kitti.list_samples(root, '2015', 'mixed', crop=(370, 1224))
    np.testing.assert_array_equal(load_occlusion(cropped), ~valid_noc[5:, :1224])


def test_validation_keys_are_safe_in_log_lines():
    assert custom.list_key('/data/mine/val.txt') == 'custom.val'
    assert custom.list_key('my val, v2=3.txt') == 'custom.my_val__v2_3'


# --- pairs to predict --------------------------------------------------------------------------

def test_pair_lists_name_outputs_after_image1_or_their_third_field(files):
    pairs = custom.list_pairs(write_list(files, 'a.png b.jpg\n# c\na.png b.jpg sub/named\n'),
                              progress=False)
    assert [(p.name, p.size) for p in pairs] == [('a', (H, W)), ('sub/named', (H, W))]
    assert pairs[1].where.endswith('list.txt:3') and pairs[1].img1 == str(files / 'a.png')
    for text, fragment in (('a.png small.png\n', 'must have one size'),
                           ('a.png b.jpg ../out\n', 'inside the output folder'),
                           ('a.png b.jpg /tmp/out\n', 'inside the output folder'),
                           ('a.png\n', '1 field, expected 2 to 3 (IMAGE1 IMAGE2 [NAME])'),
                           ('a.png missing.png\n', 'IMAGE2')):
        with pytest.raises(UserError, match='list.txt:1: ') as error:
            custom.list_pairs(write_list(files, text), progress=False)
        assert fragment in str(error.value)


def test_frames_are_ordered_by_name_with_numbers_by_value(tmp_path):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for name in ('frame_10.png', 'frame_2.png', 'frame_1.jpg', 'notes.txt', '.hidden.png'):
        cv2.imwrite(str(folder / name), image(len(name))) if name.endswith(('png', 'jpg')) \
            else (folder / name).write_text('x')
    (folder / 'sub').mkdir()
    pairs = custom.frame_pairs(folder, progress=False)
    assert [(Path(p.img1).name, Path(p.img2).name, p.name) for p in pairs] == [
        ('frame_1.jpg', 'frame_2.png', 'frame_1'), ('frame_2.png', 'frame_10.png', 'frame_2')]


def test_a_frame_of_another_size_than_the_one_before_is_an_error_naming_both(tmp_path):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for k, shape in enumerate([(H, W), (H, W), (H + 1, W)]):
        cv2.imwrite(str(folder / ('%d.png' % k)), image(k, shape))
    with pytest.raises(UserError) as error:
        custom.frame_pairs(folder, progress=False)
    assert str(error.value) == ('%s: is 40x25 but the frame before it, %s, is 40x24: consecutive '
                                'frames must have one size' % (folder / '2.png', folder / '1.png'))
    for name in ('1.png', '2.png'):
        (folder / name).unlink()
    with pytest.raises(UserError, match='holds 1 image file; --frames needs two or more'):
        custom.frame_pairs(folder, progress=False)


# --- the custom row of reader/mixes.py ----------------------------------------------------------

def test_a_custom_config_trains_on_its_list_with_its_batch_crop_and_augmentation(files, tmp_path):
    write_list(files, 'a.png b.jpg f.flo\na.png b.jpg f.npy\n', 'train.txt')
    write_list(files, 'a.png b.jpg f.pfm\n', 'my val.txt')
    config = tmp_path / 'my.yaml'
    config.write_text('dataset: custom\ntrain_list: data/train.txt\nvalidation_list: '
                      '"data/my val.txt"\nbatch_size: 2\naugmentation: kitti\n')
    data = training_data(load_config(config, 'dataset'), 'MaskFlownet_S')
    assert data.dataset == 'custom' and data.augmentation == 'kitti'
    assert [(len(samples), count) for samples, count in data.mix] == [(2, 2)]
    assert data.orig_shape == (H, W) and data.target_shape == (64, 64)   # the smallest frame
    assert list(data.validation) == ['custom.my_val'] and data.validation_size == 1
    config.write_text('dataset: custom\ntrain_list: data/train.txt\norig_shape: [16, 32]\n'
                      'target_shape: [64, 128]\n')
    data = training_data(load_config(config, 'dataset'), 'MaskFlownet_S')
    assert (data.orig_shape, data.target_shape, data.validation) == ((16, 32), (64, 128), {})
    assert data.batch_size == 4 and data.augmentation == 'chairs'   # the defaults
    config.write_text('dataset: custom\nvalidation_list: data/train.txt\n')
    with pytest.raises(UserError, match='my.yaml: train_list: missing: training needs'):
        training_data(load_config(config, 'dataset'), 'MaskFlownet_S')


def test_a_path_of_an_unknown_users_home_is_a_missing_file_not_a_traceback(files):
    """Path.expanduser raised RuntimeError ('Could not determine home directory') for it."""
    with pytest.raises(UserError, match=r'list\.txt:1: .*~nosuchuser_4242/a\.png.*not found'):
        custom.list_samples(write_list(files, '~nosuchuser_4242/a.png b.jpg f.flo\n'),
                            progress=False)


def test_frames_of_one_pixel_a_side_cannot_be_trained_on(tmp_path):
    """The default crop, the smallest frame, gave the augmentation a zero extent: a
    ZeroDivisionError after training had started."""
    folder = tmp_path / 'data'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), image(1, (1, W)))
    cv2.imwrite(str(folder / 'b.png'), image(2, (1, W)))
    flowio.write_flo(folder / 'f.flo', flow(3, (1, W)))
    write_list(folder, 'a.png b.png f.flo\n', 'train.txt')
    config = tmp_path / 'my.yaml'
    config.write_text('dataset: custom\ntrain_list: data/train.txt\n')
    with pytest.raises(UserError, match=r'train\.txt: its smallest frame is 40x1; training needs '
                                        r'frames of 2 pixels or more a side'):
        training_data(load_config(config, 'dataset'), 'MaskFlownet_S')


def test_validation_lists_read_their_images_in_full_at_the_start_and_training_lists_do_not(
        files, tmp_path):
    """A truncated validation image was found at the first validation, after training had
    started; a training list's images are read when used (reading them all at the start would
    cost the whole data set's size)."""
    from reader.mixes import custom_validation
    data = (files / 'a.png').read_bytes()
    (files / 'cut.png').write_bytes(data[:len(data) // 2])
    write_list(files, 'a.png b.jpg f.flo\n# then\ncut.png b.jpg f.flo\n', 'val.txt')
    config = tmp_path / 'my.yaml'
    config.write_text('dataset: custom\nvalidation_list: data/val.txt\n')
    with pytest.raises(UserError, match=r'val\.txt:3: IMAGE1 .*cut\.png: truncated PNG file'):
        custom_validation(load_config(config, 'dataset'), progress=False)
    listed = custom.list_samples(files / 'val.txt', progress=False)   # a training list
    assert len(listed.samples) == 2


def test_training_reads_the_validation_lists_images_in_full_once_and_names_the_line(
        files, tmp_path, monkeypatch):
    """custom_validation read them in full, then training's check_sets read them again."""
    from reader.sample import check_sets
    data = (files / 'a.png').read_bytes()
    (files / 'cut.png').write_bytes(data[:len(data) // 2])
    write_list(files, 'a.png b.jpg f.flo\n', 'train.txt')
    write_list(files, 'a.png b.jpg f.flo\n# then\ncut.png b.jpg f.flo\n', 'val.txt')
    config = tmp_path / 'my.yaml'
    config.write_text('dataset: custom\ntrain_list: data/train.txt\nvalidation_list: data/val.txt\n')
    reads = []
    real = flowio.check_image_complete
    monkeypatch.setattr(flowio, 'check_image_complete', lambda path: reads.append(Path(path).name)
                        or real(path))
    training = training_data(load_config(config, 'dataset'), 'MaskFlownet_S')
    assert reads == []
    with pytest.raises(UserError, match=r'val\.txt:3: .*cut\.png: truncated PNG file'):
        check_sets(training.validation)
    assert 'cut.png' in reads and len(reads) == len(set(reads))   # each read once, here
