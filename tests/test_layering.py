"""The project's layers: every import points down, and no modules import each other in a circle.

    common <- reader   <- engine <- command lines
    common <- network  <- engine
    common <- tracking <- engine

``reader`` (data on disk), ``network`` (the model and its checkpoint contract) and ``tracking``
(run logs, TensorBoard events, curves) each import ``common`` only. Every import counts, also
one inside a function. The command lines (``main.py``, ...) are imported by no package.
"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ('common', 'reader', 'network', 'tracking', 'engine')
CLIS = ('main', 'predict_new_data', 'plot_logs', 'launch')
ALLOWED = {   # what each layer may import, itself included
    'common': {'common'},
    'reader': {'common', 'reader'},
    'network': {'common', 'network'},
    'tracking': {'common', 'tracking'},
    'engine': {'common', 'reader', 'network', 'tracking', 'engine'},
    'cli': {'common', 'reader', 'network', 'tracking', 'engine'},
}


def project_modules(root):
    """{dotted module name: path} of the packages and the command lines under ``root``."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob('*.py')):
            parts = path.relative_to(root).with_suffix('').parts
            if parts[-1] == '__init__':
                parts = parts[:-1]
            modules['.'.join(parts)] = path
    for name in CLIS:
        if (root / (name + '.py')).is_file():
            modules[name] = root / (name + '.py')
    return modules


def imports_of(name, path, known):
    """[(imported project module, line)] of every import in the file, at any depth."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            # 'from pkg import mod' imports the module pkg.mod where there is one
            targets = [base + '.' + alias.name if base + '.' + alias.name in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:   # pkg.mod.attr -> pkg.mod
                target = target.rpartition('.')[0]
            if target:
                found.append((target, node.lineno))
    return found


def layer(module):
    top = module.split('.')[0]
    return 'cli' if top in CLIS else top


def import_graph(root):
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def violations(graph):
    """Imports against the layering, as readable lines."""
    bad = []
    for name, imports in sorted(graph.items()):
        for target, line in imports:
            if layer(target) == 'cli' or layer(target) not in ALLOWED[layer(name)]:
                bad.append('%s:%d imports %s' % (name, line, target))
    return bad


def cycles(graph):
    """The strongly connected components of more than one module (or a module importing
    itself), by Tarjan's algorithm."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target, _ in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or any(t == node for t, _ in graph.get(node, ())):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_import_of_the_project_points_down_the_layers():
    graph = import_graph(REPO)
    assert {'network.pipeline', 'engine.train', 'tracking.runlog', 'main'} <= set(graph)
    assert violations(graph) == []


def test_no_modules_import_each_other_in_a_circle():
    assert cycles(import_graph(REPO)) == []


def test_network_imports_no_training_logging_evaluation_or_download_code():
    graph = import_graph(REPO)
    for name, imports in graph.items():
        if layer(name) == 'network':
            assert {layer(t) for t, _ in imports} <= {'common', 'network'}, name


@pytest.mark.parametrize('source, expected', [
    ('from engine import runs\n', 'network.model:1 imports engine.runs'),
    ('def f():\n    from tracking.runlog import RunLog\n', 'network.model:2 imports tracking.runlog'),
    ('import main\n', 'network.model:1 imports main'),
    ('from reader import flowio\n', 'network.model:1 imports reader.flowio'),
])
def test_the_check_finds_an_upward_import_also_inside_a_function(tmp_path, source, expected):
    for package, files in {'common': {'errors.py': ''}, 'reader': {'flowio.py': ''},
                           'engine': {'runs.py': ''}, 'tracking': {'runlog.py': ''},
                           'network': {'model.py': source}}.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / '__init__.py').write_text('')
        for name, text in files.items():
            (tmp_path / package / name).write_text(text)
    (tmp_path / 'main.py').write_text('from engine import runs\n')
    assert violations(import_graph(tmp_path)) == [expected]


def test_the_check_finds_a_cycle_through_relative_and_function_level_imports(tmp_path):
    (tmp_path / 'engine').mkdir()
    (tmp_path / 'engine' / '__init__.py').write_text('')
    (tmp_path / 'engine' / 'a.py').write_text('from . import b\n')
    (tmp_path / 'engine' / 'b.py').write_text('def f():\n    from .c import g\n')
    (tmp_path / 'engine' / 'c.py').write_text('from engine.a import x\n')
    assert cycles(import_graph(tmp_path)) == [['engine.a', 'engine.b', 'engine.c']]
