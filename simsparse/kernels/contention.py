"""How busy the machine was while we timed: the CPU time this process actually got, steal time,
load average, and the policy that says when timings are too noisy to report.

* `cpu_share`: process CPU seconds / (wall seconds x threads asked for) over a timing window. A
  kernel that gets its cores runs near 1.0 (spinning worker threads count); another process
  sharing the cores pushes it down, and a parallel kernel then waits for its slowest thread.
* `steal_fraction`: the share of all CPU time the hypervisor gave to other guests meanwhile
  (`/proc/stat`, 0 where not reported).
* `idle_fraction`: share of all CPU time idle over a short window (to wait for a quiet machine).

The clock sources are injectable (`Probe`) so the policy is testable without a busy machine.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

PROC_STAT = "/proc/stat"
MIN_CPU_SHARE = 0.80           # below: other processes took the cores from the kernel
MAX_STEAL_FRACTION = 0.05      # above: the hypervisor took them
DEFAULT_MAX_NOISE = 0.15       # relative interquartile range of the samples accepted by `measure`
DEFAULT_MAX_WAIT_S = 30.0      # how long `measure` waits for a busy machine to calm down


@dataclass(frozen=True)
class CpuTimes:
    """One reading of the clocks (seconds; /proc/stat in jiffies, None where absent)."""

    wall_s: float
    process_s: float
    stat: tuple[int, int, int] | None   # (total, idle + iowait, steal) jiffies over all CPUs


@dataclass(frozen=True)
class Contention:
    cpu_share: float
    steal_fraction: float
    load_avg_1min: float


def read_proc_stat(path: str = PROC_STAT) -> tuple[int, int, int] | None:
    """(total, idle + iowait, steal) jiffies of the aggregate `cpu` line, or None."""
    try:
        with open(path, encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:9]] + [0] * max(0, 8 - len(fields[1:9]))
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    return user + nice + system + idle + iowait + irq + softirq + steal, idle + iowait, steal


def load_average() -> float:
    """1-minute system load average (0.0 where the OS does not report it)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


@dataclass(frozen=True)
class Probe:
    """Where readings come from (tests inject fakes)."""

    wall: Callable[[], float] = time.perf_counter
    process: Callable[[], float] = time.process_time
    stat: Callable[[], tuple[int, int, int] | None] = read_proc_stat
    load: Callable[[], float] = load_average
    sleep: Callable[[float], None] = time.sleep

    def now(self) -> CpuTimes:
        return CpuTimes(wall_s=self.wall(), process_s=self.process(), stat=self.stat())


SYSTEM = Probe()


def contention_between(start: CpuTimes, end: CpuTimes, *, threads: int, probe: Probe = SYSTEM) -> Contention:
    wall = max(end.wall_s - start.wall_s, 1e-9)
    share = (end.process_s - start.process_s) / (wall * max(1, threads))
    steal = 0.0
    if start.stat and end.stat and end.stat[0] > start.stat[0]:
        steal = (end.stat[2] - start.stat[2]) / (end.stat[0] - start.stat[0])
    return Contention(cpu_share=min(1.0, max(0.0, share)), steal_fraction=max(0.0, steal),
                      load_avg_1min=probe.load())


def idle_fraction(*, window_s: float = 1.0, probe: Probe = SYSTEM) -> float | None:
    """Share of all CPU time spent idle over the next `window_s` (None without /proc/stat)."""
    a = probe.stat()
    probe.sleep(window_s)
    b = probe.stat()
    if not a or not b or b[0] <= a[0]:
        return None
    return (b[1] - a[1]) / (b[0] - a[0])


def wait_for_cpus(threads: int, cpus: int, *, max_wait_s: float = DEFAULT_MAX_WAIT_S, window_s: float = 1.0,
                  probe: Probe = SYSTEM) -> tuple[float, bool]:
    """Wait (at most `max_wait_s`) until `threads` of the `cpus` CPUs are idle; (seconds waited, got them)."""
    needed = min(1.0, threads / max(1, cpus)) * 0.9
    waited = 0.0
    while True:
        idle = idle_fraction(window_s=window_s, probe=probe)
        if idle is None or idle >= needed:
            return waited, True
        waited += window_s
        if waited >= max_wait_s:
            return waited, False


def problem(*, noise: float, contention: Contention, max_noise: float) -> str:
    """Why a timing is not precise enough ("" when it is)."""
    why = []
    if contention.cpu_share < MIN_CPU_SHARE:
        why.append(f"it got {contention.cpu_share:.0%} of the CPU time it asked for")
    if contention.steal_fraction > MAX_STEAL_FRACTION:
        why.append(f"{contention.steal_fraction:.0%} of the CPU time was stolen by the hypervisor")
    if noise > max_noise:
        why.append(f"its samples spread {noise:.0%} (IQR/median) > {max_noise:.0%} allowed")
    return ", ".join(why)


def wait_note(threads: int, cpus: int, *, max_wait_s: float, probe: Probe, say: bool) -> tuple[str, ...]:
    """Wait (at most `max_wait_s`) for `threads` idle CPUs when the load says the machine is busy;
    the note to report (empty when it was quiet). `say`: also tell the terminal now."""
    if max_wait_s <= 0 or probe.load() < cpus - 0.5:
        return ()
    if say:  # beside the progress bar (a terminal); otherwise the note is in the result
        sys.stderr.write(f"simsparse: the machine is busy (load {probe.load():.1f} on {cpus} CPUs); waiting up to "
                         f"{max_wait_s:.0f} s for {threads} idle CPU(s)\n")
    waited, quiet = wait_for_cpus(threads, cpus, max_wait_s=max_wait_s, probe=probe)
    return (f"waited {waited:.0f} s for the machine to calm down" + ("" if quiet else " (it did not)"),)
