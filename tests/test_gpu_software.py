"""Software stacks of the GPU model: named profiles, chosen with --software, named in every output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simsparse import api, cli
from simsparse.archs import arch_data, load_arch, shipped_arch_names
from simsparse.engines import estimate
from simsparse.errors import SimSparseError, SpecError
from simsparse.graph.lower import gemm_work
from simsparse.masks.synthetic import two_four_checkerboard
from simsparse.records import Gemm, LayerWork
from simsparse.resources import data_dir

GPUS = tuple(a for a in shipped_arch_names() if arch_data(a)[0].get("kind") == "gpu_sparse_tensor_core")
STACKS = ("kernel", "pytorch-eager", "pytorch-graph")
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("arch", GPUS)
def test_a_dense_mask_costs_exactly_the_dense_baseline_under_every_stack(arch):
    for software in STACKS:
        model = load_arch(arch).with_software(software)
        work = gemm_work(name="w", gemm=Gemm(m=512, n=768, k=3072), mask=np.ones((768, 3072), dtype=bool))
        masked, dense = (estimate(model.plan(work, dense=d), model, "analytic") for d in (False, True))
        assert masked.latency_s == dense.latency_s and masked.software == software == dense.software


@SETTINGS
@given(arch=st.sampled_from(("a100_2to4", "h100_2to4", "rtx4090_2to4")), m=st.sampled_from([1, 16, 256, 4096, 65536]),
       n=st.sampled_from([256, 2048, 16384]), k=st.sampled_from([512, 4096, 14336]), sparse=st.booleans())
def test_the_kernel_stack_is_never_slower_than_eager_pytorch(arch, m, n, k, sparse):
    mask = two_four_checkerboard(n, k) if sparse else None
    work = gemm_work(name="w", gemm=Gemm(m=m, n=n, k=k), mask=mask)
    kernel, eager = (load_arch(arch).with_software(s) for s in ("kernel", "pytorch-eager"))
    assert estimate(kernel.plan(work), kernel, "analytic").latency_s <= estimate(eager.plan(work), eager,
                                                                                   "analytic").latency_s * (1 + 1e-12)


def test_the_default_stack_is_kernel_and_every_output_names_it(capsys):
    report = api.evaluate(arch="a100_2to4", gemm="4096,4096,4096", pattern="2:4")
    assert report.software == "kernel" and {e.software for e in report.estimates + report.dense_estimates} == {"kernel"}
    assert cli.main(["evaluate", "--gemm", "64,2048,2048", "--pattern", "2:4", "--arch", "h100_pcie_2to4",
                     "--software", "pytorch-eager", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["software"] == "pytorch-eager" and data["layers"][0]["software"] == "pytorch-eager"
    assert cli.main(["evaluate", "--gemm", "64,2048,2048", "--pattern", "2:4", "--arch", "a100_2to4"]) == 0
    assert "software kernel" in capsys.readouterr().out


def test_eager_pytorch_pays_its_host_time_and_the_kernel_stack_does_not():
    small = dict(arch="a100_2to4", gemm="1,1024,4096", pattern="2:4")
    eager = api.evaluate(software="pytorch-eager", **small)
    kernel = api.evaluate(software="kernel", **small)
    floor = load_arch("a100_2to4").with_software("pytorch-eager").spec.sparse_library.host_overhead_s
    assert eager.total.latency_s == pytest.approx(floor) and eager.estimates[0].bound == "overhead"
    assert kernel.total.latency_s < floor and kernel.estimates[0].bound != "overhead"


def test_an_unknown_stack_is_refused_naming_the_known_ones(capsys):
    with pytest.raises(SpecError, match="unknown software stack 'jax'; known: kernel, pytorch-eager"):
        api.evaluate(arch="a100_2to4", gemm="64,64,64", pattern="2:4", software="jax")
    assert cli.main(["evaluate", "--gemm", "64,64,64", "--arch", "a100_2to4", "--software", "jax"]) == 2
    assert "unknown software stack" in capsys.readouterr().err


def test_a_stack_on_an_arch_without_stacks_is_refused():
    with pytest.raises(SimSparseError, match="has no named software stacks"):
        api.evaluate(arch="systolic_32x32", gemm="64,64,64", pattern="2:4", software="kernel")


def test_compare_applies_a_stack_to_the_gpus_only(tmp_path):
    import ckpt_factory as cf
    import torch  # compare needs a checkpoint with its traced geometry

    from simsparse.graph.tracing import trace

    class Two(torch.nn.Module):  # the factory's fc1 [16, 32] and fc2 [8, 16]
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(32, 16), torch.nn.Linear(16, 8)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    cf.make_native(tmp_path / "a.pt", geometry=trace(Two(), (torch.zeros(1, 32),), name="tiny"))
    reports = api.compare(masks=[str(tmp_path / "a.pt")], archs=["a100_2to4", "systolic_32x32"],
                          software="pytorch-eager")
    assert [r.software for r in reports] == ["pytorch-eager", ""]


def test_a_spec_may_define_its_own_stack(tmp_path):
    text = (data_dir("accelerators") / "a100_2to4.yaml").read_text()
    extra = ("    triton:\n      description: a hand-written kernel launched from Python\n"
             "      launch_gap_s: 3.0e-6\n      dense: {host_overhead_s: 1.5e-5}\n")
    path = tmp_path / "a100_triton.yaml"
    path.write_text(text.replace("  profiles:\n", "  profiles:\n" + extra))
    model = load_arch(str(path))
    assert "triton" in model.software_stacks()
    assert model.with_software("triton").spec.dense.host_overhead_s == 1.5e-5


def test_a_retired_host_overhead_switch_is_refused_with_a_pointer_to_the_stacks(tmp_path):
    text = (data_dir("accelerators") / "a100_2to4.yaml").read_text()
    path = tmp_path / "old.yaml"
    path.write_text(text.replace("software:\n", "software:\n  include_host_overhead: true\n", 1))
    with pytest.raises(SpecError, match="software.include_host_overhead was replaced by software stacks"):
        load_arch(str(path))


def test_validate_restricts_to_the_rows_of_one_stack():
    from simsparse.validate import published

    report = published.run(software="pytorch-eager")
    assert report.points and {p.software for p in report.points} == {"pytorch-eager"}
    assert {p.source for p in report.points} <= {"a100_2to4_dev", "gpu_2to4_heldout"}


@pytest.mark.parametrize("arch", ("a100_2to4", "h100_2to4"))
def test_a_memory_bound_op_pays_no_library_host_time_only_its_stacks_dispatch(arch):
    op = LayerWork(name="relu", kind="memory", op_kind="relu", bytes_moved=4096)
    times = {}
    for software in STACKS:
        model = load_arch(arch).with_software(software)
        e = estimate(model.plan(op), model, "analytic")
        times[software] = e.latency_s
        assert e.latency_s >= model.spec.profile.op_host_overhead_s
    kernel = load_arch(arch).with_software("kernel").spec
    # a ReLU launched from C++ costs its device time, not cuBLASLt's host time per call (H100: 8.3 us)
    assert times["kernel"] < kernel.dense.host_overhead_s or kernel.dense.host_overhead_s == 0
    assert times["kernel"] <= times["pytorch-eager"] and times["pytorch-eager"] >= 8.0e-6   # eager's dispatch
