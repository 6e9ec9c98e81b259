"""Your own data: list files of image pairs with their ground truth (``dataset: custom``), and
lists of pairs to predict (``predict_new_data.py --pairs``).

A list has one sample a line, its fields separated by whitespace::

    # IMAGE1 IMAGE2 FLOW [VALID [OCC]]
    frames/0001.png frames/0002.png flow/0001.flo
    frames/0002.png frames/0003.png flow/0002.pfm masks/0002_valid.png
    "my frames/0003.png" 'my frames/0004.png' flow/0003.npy - occ/0003.png

* Fields are split as a POSIX shell splits words: a path with spaces is quoted ('...' or
  "...") or has its spaces escaped with a backslash. A ``#`` at the start of a field starts a
  comment to the end of the line (``a#b.png`` is a name); blank lines are skipped. Line numbers
  in messages are the file's own lines.
* A relative path is relative to the folder of the list file; absolute paths and ``~`` work.
* FLOW is read by its extension: ``.flo``, ``.pfm``, ``.png`` (KITTI 16-bit, with its valid
  bit) or ``.npy`` (H x W x 2 float, (x, y) pixels). VALID (optional) is an 8- or 16-bit PNG,
  non-zero = valid. OCC (optional, for the metrics) is a PNG, non-zero = occluded; write ``-``
  for VALID when there is an OCC but no VALID.

Every line is checked before any work, from the files' headers where they tell enough (PNG,
JPEG and PPM images; .flo, .pfm, .npy and KITTI PNG flows): the files exist, the fields are
as many as they should be, the two images of a pair have one size and the flow and masks have
it too, and float flows hold no NaN or infinite value (those files are read once, in chunks).
A problem is one line: ``LIST:LINE: what``. Nothing of the images is kept: a list of any
length costs a few hundred bytes a line.
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple


from common.errors import UserError
from common.options import check_side
from reader import flowio
from reader.sample import BGR, LISTED, OCC_PNG, Sample, check_lines

SAMPLE_FIELDS = ('IMAGE1', 'IMAGE2', 'FLOW', 'VALID', 'OCC')
PAIR_FIELDS = ('IMAGE1', 'IMAGE2', 'NAME')
NONE = '-'              # an optional field left empty (VALID when only OCC is given)
_KEY_CHARACTERS = re.compile(r'[^A-Za-z0-9_.-]')


@dataclass(frozen=True)
class Line:
    """One line of a list: where it is and its fields (paths resolved, None for ``-``)."""
    where: str                      # 'LIST:LINE', the prefix of every message about it
    written: Tuple[str, ...]        # the fields as the line writes them
    fields: Tuple[Optional[str], ...]


def split_fields(text):
    """The fields of one line, split as a POSIX shell splits words: whitespace separates,
    quotes ('...' keeps everything, "..." keeps all but backslash escapes of " and \\) and
    backslash escapes join; ``#`` at the start of a field comments out the rest of the line.
    ValueError for an unclosed quote or a backslash at the end."""
    fields, current, in_word, k = [], [], False, 0
    while k < len(text):
        char = text[k]
        if char.isspace():
            if in_word:
                fields.append(''.join(current))
                current, in_word = [], False
        elif char == '#' and not in_word:
            break
        elif char == "'":
            end = text.find("'", k + 1)
            if end < 0:
                raise ValueError('unclosed quote (\')')
            current.append(text[k + 1:end])
            in_word, k = True, end
        elif char == '"':
            k += 1
            while k < len(text) and text[k] != '"':
                if text[k] == '\\' and k + 1 < len(text) and text[k + 1] in '"\\':
                    k += 1
                current.append(text[k])
                k += 1
            if k >= len(text):
                raise ValueError('unclosed quote (")')
            in_word = True
        elif char == '\\':
            if k + 1 >= len(text):
                raise ValueError('a backslash at the end of the line')
            current.append(text[k + 1])
            in_word, k = True, k + 1
        else:
            current.append(char)
            in_word = True
        k += 1
    if in_word:
        fields.append(''.join(current))
    return fields


def read_list(path, names, required, paths=None):
    """The non-blank, non-comment lines of the list ``path`` as ``Line``s whose fields are
    ``names[:n]`` for ``required <= n <= len(names)``; the first ``paths`` fields (all by
    default) are paths, resolved against the list's folder, the others are kept as written.

    UserError naming the list (and the line) for a missing or unreadable list, a line with too
    few or too many fields or an unclosed quote, and a list without any sample.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f'{path}: list file {"not a regular file" if path.exists() else "not found"}')
    try:
        text = path.read_bytes().decode('utf-8-sig')   # a byte order mark is not a path
    except OSError as e:
        raise UserError(f'{path}: cannot read the list ({e.strerror or e})') from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b'\n') + 1
        raise UserError(f'{path}:{line}: not UTF-8 text ({e.reason})') from None
    folder = path.parent
    lines = []
    expected = ' '.join(names[:required] + tuple('[%s' % n for n in names[required:])) + \
        ']' * (len(names) - required)
    for number, raw in enumerate(text.split('\n'), 1):
        where = f'{path}:{number}'
        try:
            fields = split_fields(raw)
        except ValueError as e:
            raise UserError(f'{where}: {e}') from None
        if not fields:
            continue
        if not required <= len(fields) <= len(names):
            raise UserError(f'{where}: {len(fields)} field{"s" if len(fields) != 1 else ""}, '
                            f'expected {_count(required, len(names))} ({expected})')
        resolved = []
        for index, (name, field) in enumerate(zip(names, fields)):
            if '\0' in field:   # no file name holds one; os.path raises ValueError for it
                raise UserError(f'{where}: {name} holds a NUL byte')
            if paths is not None and index >= paths:
                resolved.append(field)
            elif field == NONE and index >= required:
                resolved.append(None)
            elif field == NONE:
                raise UserError(f'{where}: {name} is required, got -')
            else:
                # os.path's: Path.expanduser raises for ~nosuchuser, this leaves it as written
                resolved.append(str(folder / os.path.expanduser(field)))
        lines.append(Line(where, tuple(fields), tuple(resolved)))
    if not lines:
        raise UserError(f'{path}: no samples (the list holds only blank lines and comments)')
    return lines


def _count(low, high):
    return str(low) if low == high else f'{low} to {high}'


def list_key(path):
    """The key a validation list is reported under: ``custom.<list file's stem>``, with
    characters other than letters, digits, ``_``, ``.`` and ``-`` replaced by ``_`` (the log's
    ``key=value, ...`` lines and TensorBoard's tags take no others)."""
    return 'custom.' + _KEY_CHARACTERS.sub('_', Path(path).stem)


# --- checking and listing samples ------------------------------------------------------------

def _size_text(size):
    return '%dx%d' % (size[1], size[0])


def _read_field(line, field, path, read):
    """``read(path)``; its UserError (which names the file first) told as
    ``LIST:LINE: FIELD PATH: problem``."""
    try:
        return read(path)
    except UserError as error:
        message = str(error)
        if message.startswith(path + ': '):
            message = message[len(path) + 2:]
        raise UserError(f'{line.where}: {field} {path}: {message}') from None


def _check_line(line, crop=None, whole=False):
    """(height, width) of the line's pair after checking its files (see the module docstring);
    ``whole``: its images are read in full (``flowio.check_image_complete``) too."""
    img1, img2, flow = line.fields[:3]
    valid, occ = (line.fields[3:] + (None, None))[:2]
    named = dict(zip(SAMPLE_FIELDS, line.fields))

    def problem(field, text):
        raise UserError(f'{line.where}: {field} {named[field]}: {text}')

    def checked(field, read):
        return _read_field(line, field, named[field], read)

    image_size = flowio.whole_image_size if whole else flowio.image_size
    size1 = checked('IMAGE1', image_size)
    size2 = checked('IMAGE2', image_size)
    if size1 != size2:
        problem('IMAGE2', f'is {_size_text(size2)} but IMAGE1 {img1} is {_size_text(size1)}: '
                          f'the images of a pair must have one size')
    flow_hw = checked('FLOW', flowio.flow_size)
    if flow_hw != size1:
        problem('FLOW', f'flow is {_size_text(flow_hw)} but IMAGE1 {img1} is {_size_text(size1)}')
    for field, path in (('VALID', valid), ('OCC', occ)):
        if path is None:
            continue
        if os.path.splitext(path)[1].lower() != '.png':
            problem(field, 'must be a PNG file (8- or 16-bit, non-zero = %s)'
                           % ('valid' if field == 'VALID' else 'occluded'))
        height, width, depth, _ = checked(field, flowio.png_header)
        if depth not in (1, 2, 4, 8, 16):
            problem(field, f'unsupported PNG bit depth {depth}')
        if (height, width) != size1:
            problem(field, f'mask is {_size_text((height, width))} but IMAGE1 {img1} is '
                           f'{_size_text(size1)}')
    bad = checked('FLOW', flowio.count_non_finite)
    if bad:
        problem('FLOW', f'holds {bad} NaN or infinite values (mark unknown flow with a VALID '
                        f'mask instead)')
    if crop is not None and (size1[0] < crop[0] or size1[1] < crop[1]):
        problem('IMAGE1', f'is {_size_text(size1)}, smaller than the training crop '
                          f'{_size_text(crop)} (orig_shape [{crop[0]}, {crop[1]}])')
    return size1


@dataclass
class CustomList:
    """A checked list: its samples, in list order, and the smallest frame (H, W) among them."""
    path: str
    samples: List[Sample]
    smallest: Tuple[int, int]

    @property
    def key(self):
        return list_key(self.path)


def list_samples(path, crop=None, progress=True, whole=False):
    """The samples of the list ``path`` (IMAGE1 IMAGE2 FLOW [VALID [OCC]] a line), every line
    checked first; ``crop=(H, W)``: also check that every frame holds the training crop;
    ``whole``: also read every image in full (a validation list: a damaged image found at the
    start, not at a validation hours in; a training list's would cost its whole size)."""
    lines = read_list(path, SAMPLE_FIELDS, 3)
    sizes = check_lines(lines, lambda line: _check_line(line, crop, whole),
                        'checking %s' % Path(path).name if progress else None)
    samples = []
    for line in lines:
        img1, img2, flow = line.fields[:3]
        valid, occ = (line.fields[3:] + (None, None))[:2]
        samples.append(Sample(
            name=line.where, img1=Path(img1), img2=Path(img2), flow=Path(flow),
            mask=None if valid is None else Path(valid), mask_kind=LISTED, channel_order=BGR,
            occ=None if occ is None else Path(occ), occ_kind=None if occ is None else OCC_PNG,
            listed_at=line.where, key=' '.join(line.written)))
    smallest = (min(s[0] for s in sizes), min(s[1] for s in sizes))
    return CustomList(str(path), samples, smallest)


# --- pairs to predict: --pairs LIST and --frames DIR --------------------------------------

@dataclass(frozen=True)
class Pair:
    """Two images to predict the flow between, and the name of the output (no extension)."""
    where: str                      # 'LIST:LINE', or the first frame's path
    img1: str
    img2: str
    name: str                       # IMAGE1's stem, or a list's NAME field
    size: Tuple[int, int]           # (H, W) of both images


def _check_pair(line):
    img1, img2 = line.fields[:2]
    named = dict(zip(PAIR_FIELDS, line.fields))

    def size(path):
        size = flowio.whole_image_size(path)   # read in full: damage found now
        check_side(path, size)
        return size

    def read(field):
        return _read_field(line, field, named[field], size)

    size1, size2 = read('IMAGE1'), read('IMAGE2')
    if size1 != size2:
        raise UserError(f'{line.where}: IMAGE2 {img2}: is {_size_text(size2)} but IMAGE1 {img1} '
                        f'is {_size_text(size1)}: the images of a pair must have one size')
    return size1


# A NAME part's longest: file systems take 255 bytes a name, and an output's temporary adds
# up to '_occ.png.tmp-4194304.png' (24 bytes).
MAX_NAME_BYTES = 200


def list_pairs(path, progress=True):
    """The pairs of a ``--pairs`` list (IMAGE1 IMAGE2 [NAME] a line, read as sample lists are),
    every line checked first. NAME is the output's name without extension (it may name a
    subfolder); it defaults to IMAGE1's stem. A NAME that leaves the output folder (absolute,
    or with ``..``) is refused."""
    lines = read_list(path, PAIR_FIELDS, 2, paths=2)
    for line in lines:
        if len(line.fields) > 2:
            name = Path(line.fields[2])
            if (name.is_absolute() or '..' in name.parts or not name.parts
                    or line.fields[2].endswith(('/', os.sep))):
                raise UserError(f'{line.where}: NAME {line.fields[2]}: must name a file inside '
                                f'the output folder (a relative name, without ..)')
            if max(len(os.fsencode(part)) for part in name.parts) > MAX_NAME_BYTES:
                raise UserError(f'{line.where}: NAME: a part of it is longer than '
                                f'{MAX_NAME_BYTES} bytes, too long a file name with the '
                                f'extensions of the outputs and their temporaries')
    sizes = check_lines(lines, _check_pair, 'checking %s' % Path(path).name if progress else None)
    return [Pair(line.where, line.fields[0], line.fields[1],
                 line.fields[2] if len(line.fields) > 2 else Path(line.fields[0]).stem, size)
            for line, size in zip(lines, sizes)]


def natural_key(name):
    """Sort key: names in order, numbers by value (frame_2 before frame_10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)], name


def frame_pairs(folder, progress=True):
    """The pairs of consecutive frames of ``folder`` (its image files, by name with numbers by
    value; other files and subfolders are left alone), every frame's size read first.
    UserError for fewer than two frames, and for a frame whose size differs from the one
    before it (naming both)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f'{folder}: --frames needs a folder of frames'
                        f'{" (this is a file)" if folder.exists() else " (not found)"}')
    entries = [entry for entry in os.scandir(folder) if not entry.name.startswith('.')
               and os.path.splitext(entry.name)[1].lower() in flowio.IMAGE_INPUT_EXTENSIONS]
    for entry in entries:   # a frame missing from the sequence would pass unnoticed
        if not entry.is_file() and not entry.is_dir():
            raise UserError(f'{entry.path}: not a regular file (a broken link or a special '
                            f'file among the frames)')
    frames = sorted((entry.name for entry in entries if entry.is_file()), key=natural_key)
    if len(frames) < 2:
        raise UserError(f'{folder}: holds {len(frames)} image file{"s" if len(frames) != 1 else ""}; '
                        f'--frames needs two or more ({", ".join(flowio.IMAGE_INPUT_EXTENSIONS)})')
    paths = [str(folder / name) for name in frames]

    def size_of(path):
        size = flowio.whole_image_size(path)   # read in full: damage found now
        check_side(path, size)
        return size
    lines = [Line(path, (name,), (path,)) for name, path in zip(frames, paths)]
    sizes = check_lines(lines, lambda line: size_of(line.fields[0]),
                        'checking %s' % folder.name if progress else None)
    for k in range(1, len(paths)):
        if sizes[k] != sizes[k - 1]:
            raise UserError(f'{paths[k]}: is {_size_text(sizes[k])} but the frame before it, '
                            f'{paths[k - 1]}, is {_size_text(sizes[k - 1])}: consecutive frames '
                            f'must have one size')
    return [Pair(paths[k], paths[k], paths[k + 1], Path(paths[k]).stem, sizes[k])
            for k in range(len(paths) - 1)]
