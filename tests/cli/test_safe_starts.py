"""Every input is checked before work starts: configs, command-line numbers, environment
variables, and what a launcher hands a process. One line ``error: ...``, exit status 2, and
nothing built, trained or written."""
import os
import subprocess
import sys

import pytest

import launch
import main as main_cli
import plot_logs
import predict_new_data
from tests.helpers import REPO, one_line



@pytest.fixture
def no_network(workdir, no_network_built):
    """The working directory of conftest's workdir, where no network may be built."""
    return workdir


def nothing_written(folder):
    return not (folder / 'weights').exists() and not (folder / 'logs').exists()


@pytest.mark.parametrize('text, fragment', [
    ('dataset: chairs\ncheckpoint_steps: 0\n', 'checkpoint_steps: must be greater than 0'),
    ('dataset: chairs\ncheckpoint_step: 100\n',
     "unknown key 'checkpoint_step' (did you mean 'checkpoint_steps'?)"),
    ('dataset: chairs\nvalidation_steps: "many"\n', 'validation_steps: must be an integer'),
    ('dataset: chairs\ntarget_shape: [-320, 448]\n', 'target_shape[0]: must be greater than 0'),
])
def test_a_bad_dataset_config_value_is_found_before_anything_is_built(no_network, capsys, text,
                                                                      fragment):
    (no_network / 'bad.yaml').write_text(text)
    assert main_cli.main(['MaskFlownet_S.yaml', '--dataset_cfg', 'bad.yaml', '--debug']) == 2
    one_line(capsys, 'bad.yaml: ' + fragment)
    assert nothing_written(no_network)


def test_a_misspelt_network_config_key_is_an_error_not_a_default(no_network, capsys):
    (no_network / 'net.yaml').write_text('netwrok:\n  class: MaskFlownet_S\nnetwork:\n'
                                      '  class: MaskFlownet_S\n')
    assert main_cli.main(['net.yaml', '--debug']) == 2
    one_line(capsys, "net.yaml: unknown key 'netwrok' (did you mean 'network'?)")


@pytest.mark.parametrize('argv, fragment', [
    (['--seed', '-1'], '--seed -1: must be from 0 to 2147483647'),
    (['--seed', str(2 ** 31)], '--seed 2147483648: must be from 0'),
    (['--max_steps', '0'], '--max_steps 0: must be 1 or more'),
    (['--shard', '-2'], '--shard -2: must be 1 or more'),
    (['--batch', '0'], '--batch 0: must be 1 or more'),
])
def test_command_line_numbers_are_checked_first(no_network, capsys, argv, fragment):
    assert main_cli.main(['MaskFlownet_S.yaml', '--debug'] + argv) == 2
    one_line(capsys, fragment)
    assert nothing_written(no_network)


@pytest.mark.parametrize('name, value, fragment', [
    ('MASKFLOWNET_SINTL', '/data/sintel', 'MASKFLOWNET_SINTL: unknown (did you mean '
                                          'MASKFLOWNET_SINTEL?)'),
    ('MASKFLOWNET_WEIGHTS_URL', 'github.com/mirror', 'not an http(s):// or file:// address'),
    ('MASKFLOWNET_DATASETS', '/no/such/roots.yaml', 'MASKFLOWNET_DATASETS=\'/no/such/roots.yaml\''
                                                    ': no such file'),
    ('OMP_NUM_THREADS', 'abc', "OMP_NUM_THREADS='abc': must be a whole number of threads"),
    ('OMP_NUM_THREADS', '0', "OMP_NUM_THREADS='0'"),
    ('OMP_NUM_THREADS', '\u00b2', "OMP_NUM_THREADS='\u00b2'"),             # a superscript two
    ('OMP_NUM_THREADS', '\u0661', "OMP_NUM_THREADS='\u0661'"),             # an Arabic-Indic one
    ('OMP_NUM_THREADS', '99999999999999999999', 'from 1 to 4096'),
    ('MASKFLOWNET_WEIGHTS_URL', 'http://[::1', 'not an address'),
])
def test_environment_variables_are_checked_by_every_command(no_network, capsys, monkeypatch, name,
                                                            value, fragment):
    monkeypatch.setenv(name, value)
    commands = [
        lambda: main_cli.main(['MaskFlownet_S.yaml', '--debug']),
        lambda: predict_new_data.main(['out.flo', 'MaskFlownet_S.yaml', '--image_1', 'a.png',
                                       '--image_2', 'b.png', '-c', 'x']),
        lambda: plot_logs.main(['out.png', 'run.log']),
        lambda: launch.main(['-n', '1', '--launcher', 'local', 'python', 'script.py']),
    ]
    for command in commands:
        assert command() == 2
        one_line(capsys, fragment)
    assert nothing_written(no_network)


def test_a_malformed_omp_num_threads_is_one_line_not_an_mxnet_abort(tmp_path):
    # MXNet 1.9 terminates the process (dmlc::ParamError, exit 134) on such a value.
    env = dict(os.environ, OMP_NUM_THREADS='4,2')
    for command in (['main.py', 'MaskFlownet_S.yaml', '--valid', '-c', 'none'],
                    ['-m', 'network.init_checkpoint', 'MaskFlownet_S.yaml',
                     str(tmp_path / 'x.params')]):
        done = subprocess.run([sys.executable] + command, cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr == ("error: environment variable OMP_NUM_THREADS='4,2': must be a "
                               "whole number of threads from 1 to 4096 (MXNet aborts on "
                               "anything else)\n")


def test_a_process_started_by_a_launcher_without_a_distributed_kvstore_refuses(no_network, capsys,
                                                                              monkeypatch):
    monkeypatch.setenv('DMLC_ROLE', 'worker')
    assert main_cli.main(['MaskFlownet_S.yaml', '--debug']) == 2
    one_line(capsys, '--kvstore device: this process was started by a launcher as a worker',
             'give --kvstore dist_sync')
    assert nothing_written(no_network)


@pytest.mark.parametrize('command, fragment', [
    (['python', 'main.py', 'MaskFlownet_S.yaml', '--debug'],
     'runs main.py with --kvstore device: its workers would train alone'),
    (['python', 'main.py', 'MaskFlownet_S.yaml', '--kvstore', 'local'], '--kvstore local'),
    (['python', 'main.py', 'MaskFlownet_S.yaml', '--kvstore=dist_sync', '--valid'],
     'main.py --valid, which trains nothing'),
    (['python', 'main.py', 'MaskFlownet_S.yaml', '--kv', 'local'], '--kvstore local'),
    (['python', 'main.py', 'MaskFlownet_S.yaml', '--kvs=dist_sync', '--pred'],
     'main.py --predict, which trains nothing'),
    (['python', '-m', 'main', 'MaskFlownet_S.yaml', '--debug'], '--kvstore device'),
    (['python', 'main.py', 'no_such.yaml', '--kvstore', 'dist_sync'], "config 'no_such.yaml' not found"),
    (['python', 'main.py', 'MaskFlownet_S.yaml', '--batch', 'x'],
     "the command runs main.py with argument --batch: invalid int value: 'x'"),
    (['python', 'main.py', 'MaskFlownet_S.yaml', '--kvstore', 'dist_sync', '--seed', '-3'],
     '--seed -3: must be from 0'),
])
def test_launch_refuses_a_command_that_cannot_form_one_job_before_starting_anything(
        no_network, capsys, monkeypatch, command, fragment):
    import engine.launcher
    monkeypatch.setattr(engine.launcher, 'import_tracker', lambda: pytest.fail('started'))
    assert launch.main(['-n', '2', '-s', '1', '--launcher', 'local'] + command) == 2
    one_line(capsys, fragment)


@pytest.mark.parametrize('timeout', ['nan', '-1', 'inf'])
def test_launch_exit_timeout_must_be_a_positive_number(no_network, capsys, monkeypatch, timeout):
    import engine.launcher
    monkeypatch.setattr(engine.launcher, 'import_tracker', lambda: pytest.fail('started'))
    assert launch.main(['-n', '1', '--launcher', 'local', '--exit_timeout', timeout,
                        'python', 'script.py']) == 2
    one_line(capsys, '--exit_timeout %s: must be a positive number' % timeout)


def test_environment_variable_table_knows_every_dataset_root():
    from common.environment import DATASET_KEYS, VARIABLES
    from reader import roots
    assert set(DATASET_KEYS) == set(roots.DATASETS)
    assert {roots.env_var(key) for key in roots.DATASETS} | {roots.ROOTS_FILE_ENV} <= set(VARIABLES)
    from engine import published, runs
    assert {published.URL_VARIABLE, runs.RUN_RECORD_ENV} <= set(VARIABLES)


@pytest.mark.parametrize('command, argv, fragment', [
    (main_cli, ['MaskFlownet_S.yaml', '--batch', 'abc'], "argument --batch: invalid int value: 'abc'"),
    (main_cli, [], 'the following arguments are required: config'),
    (main_cli, ['MaskFlownet_S.yaml', '--valid', '--predict'], 'not allowed with argument'),
    (plot_logs, ['out.png', 'run.log', '--smoothing', 'x'], "invalid float value: 'x'"),
    (launch, ['-n', 'two', 'python', 'x.py'], "argument -n/--num-workers: invalid int value"),
    (predict_new_data, ['o.flo', 'MaskFlownet.yaml', '-c', 'x'], 'give an image pair'),
])
def test_usage_errors_are_one_line_too(capsys, command, argv, fragment):
    with pytest.raises(SystemExit) as exit_info:
        command.main(argv)
    assert exit_info.value.code == 2
    err = one_line(capsys, fragment)
    assert err.endswith('--help: usage)\n')


@pytest.mark.parametrize('signum, status', [('SIGTERM', 143), ('SIGHUP', 129)])
def test_termination_signals_end_a_command_as_ctrl_c_does(capsys, signum, status):
    """A scheduler's SIGTERM or a lost terminal's SIGHUP: the same clean-up as Ctrl-C (finally
    blocks, atomic outputs), one line, 128 + the signal's number."""
    import os
    import signal
    from common.cli import run
    cleaned = []

    def body():
        try:
            os.kill(os.getpid(), getattr(signal, signum))
            signal.sigtimedwait([], 1)   # the handler runs before this returns
        finally:
            cleaned.append(True)
    assert run(body) == status and cleaned == [True]
    assert capsys.readouterr().err == 'terminated (%s)\n' % signum
    assert signal.getsignal(getattr(signal, signum)) in (signal.SIG_DFL, signal.default_int_handler)


def test_a_lock_that_is_a_folder_is_one_line(tmp_path):
    from common.errors import UserError
    from common.files import OwnerLock
    (tmp_path / 'run.lock').mkdir()
    with pytest.raises(UserError, match=r'run.lock: cannot open the lock of run X \(Is a directory\)'):
        OwnerLock(tmp_path / 'run.lock', 'run X').acquire()


@pytest.mark.parametrize('mode', ['--valid', '--predict'])
def test_valid_and_predict_find_a_wrong_root_before_the_network_and_leave_no_log(
        no_network, capsys, monkeypatch, mode, golden_checkpoint):
    (no_network / 'roots.yaml').write_text('chairs: %s\nsintel: /no/such/sintel\n'
                                           % (no_network / 'chairs'))
    monkeypatch.setenv('MASKFLOWNET_DATASETS', str(no_network / 'roots.yaml'))
    assert main_cli.main(['MaskFlownet_S.yaml', mode, '-c',
                          str(golden_checkpoint('MaskFlownet_S'))]) == 2
    one_line(capsys, '/no/such/sintel: dataset root does not exist')
    assert not (no_network / 'logs' / 'val').exists() or not list((no_network / 'logs' / 'val').iterdir())
    assert not (no_network / 'flows').exists()
