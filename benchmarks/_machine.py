"""How much of the machine other processes used while a benchmark ran.

On a shared 2-core box another job running at the same time can slow a
benchmark several-fold, and a median of 3 cannot hide that. This compares
the CPU time the whole machine spent busy (``/proc/stat``) with the CPU time
this process and its children spent (``getrusage``): the difference is
someone else's. Linux only; elsewhere it reports nothing.
"""

from __future__ import annotations

import os
import resource

NOISY_SHARE = 0.10  # above this share of the machine, the figures are suspect


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot, or None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds used by this process and the children it has waited for."""
    return sum(
        resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )


class OtherLoad:
    """``start()`` before the runs, ``report(wall)`` after: one line on foreign CPU use."""

    def start(self) -> None:
        self.busy, self.own = _busy_seconds(), _own_seconds()

    def report(self, wall_seconds: float) -> str:
        now = _busy_seconds()
        if self.busy is None or now is None or wall_seconds <= 0:
            return "other processes: unknown (no /proc/stat)"
        foreign = max(0.0, (now - self.busy) - (_own_seconds() - self.own))
        share = foreign / (wall_seconds * (os.cpu_count() or 1))
        verdict = "quiet" if share <= NOISY_SHARE else "NOISY: rerun when the machine is idle"
        return f"other processes used {foreign:.1f} CPU-s during the runs ({share:.0%} of the machine): {verdict}"
