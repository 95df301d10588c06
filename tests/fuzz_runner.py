"""Runs `simsparse` commands under a memory cap, one forked child per command, for the fuzz tests and
benchmarks/bench_hostile.py.

`Runner()` starts one helper process that imports simsparse (torch included) once; `run(argv)`
forks a child of it that sets RLIMIT_AS (the helper's own address space + `extra_mb`), sends
stdout/stderr to files, calls `simsparse.cli.main(argv)` and exits with its code. The result holds
the exit code, stderr, the child's peak RSS (wait4) and wall time; a child past `timeout_s` is
killed (code -9).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Result:
    code: int
    stderr: str
    stdout_bytes: int
    maxrss_mb: float
    wall_s: float

    @property
    def first_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[0] if lines else ""


class Runner:
    def __init__(self, *, root: Path = ROOT, python: str = sys.executable) -> None:
        env = {**os.environ, "PYTHONPATH": str(root), "SIMSPARSE_SKIP_PROBE": "1"}
        self.proc = subprocess.Popen([python, str(Path(__file__).resolve()), "--serve"], cwd=root, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, argv: list[str], *, cwd: str | Path | None = None, extra_mb: int = 1024,
            timeout_s: float = 30.0) -> Result:
        request = {"argv": [str(a) for a in argv], "cwd": str(cwd or ROOT), "extra_mb": extra_mb,
                   "timeout_s": timeout_s}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fuzz runner died")
        return Result(**json.loads(line))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- the helper process


def _vm_size_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _child(request: dict, out: str, err: str) -> None:
    from simsparse.cli import main

    try:
        os.chdir(request["cwd"])
        limit = _vm_size_bytes() + request["extra_mb"] * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        for fd, path in ((1, out), (2, err)):
            f = os.open(path, os.O_WRONLY | os.O_TRUNC)
            os.dup2(f, fd)
            os.close(f)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        code = main(request["argv"])
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - anything escaping main is what the tests look for
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        code = 99
    os._exit(code if isinstance(code, int) else 1)


def _serve_one(request: dict) -> dict:
    with tempfile.NamedTemporaryFile(delete=False) as o, tempfile.NamedTemporaryFile(delete=False) as e:
        out, err = o.name, e.name
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(request, out, err)
    deadline = t0 + request["timeout_s"]
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() > deadline:
            os.kill(pid, 9)
            done, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    result = {"code": code, "stderr": Path(err).read_text(errors="replace")[:20000],
              "stdout_bytes": Path(out).stat().st_size, "maxrss_mb": usage.ru_maxrss / 1024.0, "wall_s": wall}
    os.unlink(out)
    os.unlink(err)
    return result


def serve() -> None:
    import simsparse.cli  # noqa: F401  (import once: every child starts warm)
    import simsparse.dse  # noqa: F401
    import simsparse.kernels.measure  # noqa: F401
    import simsparse.dst.train  # noqa: F401
    import simsparse.graph.tracing  # noqa: F401
    import simsparse.validate.published  # noqa: F401  (scipy)

    for line in sys.stdin:
        sys.stdout.write(json.dumps(_serve_one(json.loads(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
