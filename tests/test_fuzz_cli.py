"""Every command's parser under a memory cap: a hostile value in any argument is one line on stderr
and exit 2 (or, when it happens to be valid, a normal run), never a traceback, an internal error
or an output file. Runs in a forked child per command (tests/fuzz_runner.py)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hostile_corpus as hc
from fuzz_runner import Runner

HOSTILE = ["", " ", "-1", "0", "1e12", "1_0", "６４", "２:４", "nan", "inf", "1e309", "9" * 40, "0x10",
           "1:100000000", "fanin=0", "a" * 300, "\x7f", "/dev/zero", "/", "/nonexistent/x"]
NUMBERS = ["-1", "0", "1e12", "1_0", "６４", "nan", "inf", "1e309", "9" * 40, "0x10", "", "2:4"]
PATHS = ["", "/", "/dev/zero", "/proc/self/mem", "/nonexistent/x", "a" * 300, "x.yaml/" + "b" * 300]

EVALUATE = ["evaluate", "--gemm", "64,64,64", "--pattern", "2:4", "--arch", "a100_2to4"]
TRAIN = ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5", "--steps", "1"]
MEASURE = ["measure", "--gemm", "1,16,32", "--pattern", "2:4", "--kernel", "dense", "--threads", "1",
           "--allow-noisy", "--max-wait", "0"]
HF = "hf:{HF}"                  # a small Llama-shaped config.json, written per test (hostile_corpus.make_hf_config)
TRACE = ["trace", HF, "-o", "w.yaml", "--seq", "8"]
TRACE_DECODE = ["trace", HF, "-o", "w.yaml", "--decode", "--context", "64"]
EVAL_MODEL = ["evaluate", "--arch", "a100_2to4", "--model", HF, "--pattern", "2:4", "--seq", "8"]
EXPLAIN = TRAIN[:-2] + ["--steps", "4", "--explain"]
SPECS = PATHS + ["hf:", "hf:/dev/zero", "module:", "module:os:system", "module:nope:x", "torchvision:", "bogus"]

# (base command, option, hostile values); the option's value is replaced (or added)
CASES = (
    [(EVALUATE, "--gemm", v) for v in HOSTILE + ["６４,２５６,２５６", "1_0,64,64", "0,8,8", "8,8", "1,100000,100000"]]
    + [(EVALUATE, "--pattern", v) for v in HOSTILE + ["5:4", "0:4", "density=nan", "fanin=1.0"]]
    + [(EVALUATE[:4] + ["--workload", "mlp", "--pattern", "2:4", "--arch", "a100_2to4"], "--batch", v) for v in NUMBERS]
    + [(EVALUATE, "--seed", v) for v in NUMBERS]
    + [(EVALUATE, "--arch", v) for v in PATHS + ["no_such"]]
    + [(EVALUATE, "--set", v) for v in ["compute.sms", "=1", "compute.sms=", "compute.sms=[[1]]", "compute.sms=６４",
                                        "compute.sms=1_0", "compute.sms=-3", "compute.nope=1", "a..b=1"]]
    + [(["evaluate", "--pattern", "2:4", "--arch", "a100_2to4"], "--workload", v) for v in PATHS + ["no_such"]]
    + [(["evaluate", "--arch", "a100_2to4"], "--mask", v) for v in PATHS]
    + [(TRAIN, "--sparsity", v) for v in NUMBERS + ["1.0", "-0.1"]]
    + [(TRAIN, "--steps", v) for v in NUMBERS]
    + [(TRAIN, "--lr", v) for v in NUMBERS + ["-inf"]]
    + [(TRAIN, "--batch-size", v) for v in NUMBERS]
    + [(TRAIN, "--world-size", v) for v in ["0", "-1", "", "1_0", "６４", "1e3"]]
    + [(TRAIN, "--seed", v) for v in ["-1", "4294967296", "1.5", "", "６４"]]
    + [(TRAIN, "--set", v) for v in ["alpha=1:8", "alpha=nan", "alpha=-1", "nope=1", "alpha"]]
    + [(TRAIN, "--resume", v) for v in PATHS]
    + [(TRAIN, "--recipe", v) for v in PATHS]
    + [(MEASURE, "--gemm", v) for v in ["", "６４,１,１", "0,8,8", "1_0,8,8", "1,2"]]
    + [(MEASURE, "--pattern", v) for v in ["", "２:４", "fanin=0", "1:100000000", "5:4"]]
    + [(MEASURE, "--threads", v) for v in ["0", "-1", "", "1_0", "100000"]]
    + [(MEASURE, "--max-noise", v) for v in ["0", "-1", "nan", "inf", ""]]
    + [(["inspect"], None, v) for v in PATHS]
    + [(["sweep", "/dev/null", "--out", "r.csv"], "--executor", v)
       for v in ["", "dask://", "dask://:1", "dask://h:p", "tcp://x", "dask://a:99999"]]
    + [(["sweep"], None, v) for v in PATHS]
    + [(TRACE, "--seq", v) for v in NUMBERS]
    + [(TRACE_DECODE, "--context", v) for v in NUMBERS]
    + [(["trace", "module:torch.nn:Flatten", "-o", "w.yaml"], "--input", v)
       for v in NUMBERS + ["3,224", "3,0,4", "1,1,1,1,1,1,1,1,1", "３,２,２"]]
    + [(["trace", "-o", "w.yaml", "--seq", "8"], None, v) for v in SPECS]
    + [(TRACE, "-o", v) for v in ["", "/", "/nonexistent/x", "a" * 300, "x.yaml/" + "b" * 300]]
    + [(EVAL_MODEL, "--seq", v) for v in NUMBERS]
    + [(EVAL_MODEL + ["--decode"], "--context", v) for v in NUMBERS]
    + [(EVAL_MODEL, "--model", v) for v in SPECS]
    + [(["evaluate", "--arch", "a100_2to4", "--allow-partial"], "--mask", v) for v in PATHS]
    + [(EXPLAIN, "--steps", v) for v in NUMBERS]
    + [(EXPLAIN, "--sparsity", v) for v in ["nan", "-0.1", "1.0", "６４"]]
    + [(EXPLAIN, "--nm", v) for v in ["", "0:4", "5:4", "２:４", "2:4:8", "dense"]]
    + [(EXPLAIN, "--set", v) for v in ["alpha=1:8", "nope=1", "alpha"]]
    + [(["validate"], "--corpus", v) for v in ["", "nope", "../x", "a" * 300]]
    + [(["validate"], "--gpu-arch", v) for v in ["", "=", "A100", "A100=", "=x", "A100=nope", "\x7f=x"]]
    + [(["validate"], "--csv", v) for v in PATHS]
    + [(["validate"], "--max-noise", v) for v in ["0", "nan", "0.2"]]
)


def _argv(base, option, value):
    argv = list(base)
    if option is None:
        return argv + [value]
    if option in argv:
        argv[argv.index(option) + 1] = value
        return argv
    return argv + [option, value]


@pytest.fixture(scope="module")
def runner():
    with Runner() as r:
        yield r


def check(runner, tmp_path, argv):
    argv = argv + (["--out", "out.pt"] if argv[0] == "train" and "--out" not in argv else [])
    if any("{HF}" in a for a in argv):
        hf_dir = str(hc.make_hf_config(tmp_path))
        argv = [a.replace("{HF}", hf_dir) for a in argv]
    res = runner.run(argv, cwd=tmp_path, extra_mb=1024, timeout_s=60)
    assert res.code in (0, 2), (argv, res.code, res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, (argv, res.stderr[-2000:])
    assert res.maxrss_mb < 1024, (argv, res.maxrss_mb)
    if res.code == 2:
        assert len(res.stderr.strip().splitlines()) == 1, (argv, res.stderr)
        assert not any(p.name in ("out.pt", "r.csv", "r.csv.journal", "w.yaml") for p in tmp_path.iterdir()), argv


@pytest.mark.parametrize("base, option, value", CASES,
                         ids=[f"{b[0]}{o or ''}={v[:12]!r}" for b, o, v in CASES])
def test_a_hostile_argument_is_one_line_and_exit_2(runner, tmp_path, base, option, value):
    check(runner, tmp_path, _argv(base, option, value))


OPTIONS = [(EVALUATE, "--gemm"), (EVALUATE, "--pattern"), (EVALUATE, "--seed"), (EVALUATE, "--set"),
           (TRAIN, "--lr"), (TRAIN, "--nm"), (MEASURE, "--pattern"), (MEASURE, "--threads"), (TRACE, "--seq"),
           (EVAL_MODEL, "--context"), (EXPLAIN, "--steps"), (["validate"], "--gpu-arch")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(OPTIONS), st.text(max_size=24).filter(lambda t: not t.startswith("-")))
def test_any_text_in_any_option_never_crashes(runner, tmp_path_factory, option, text):
    base, name = option
    check(runner, tmp_path_factory.mktemp("fuzz"), _argv(base, name, text))
