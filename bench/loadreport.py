"""The tables bench.load prints at the end: results, ratios against targets, CPU per process."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench.loadkit import ROLES

if TYPE_CHECKING:
    from bench.load import Result


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile; NaN when there is nothing to rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def verdict(value: float, target: float, at_least: bool) -> str:
    ok = value >= target if at_least else value <= target
    return f"{value:6.2f}   target {'>=' if at_least else '<='} {target:g}   {'PASS' if ok else 'MISS'}"


def label(result: Result) -> str:
    return f"{result.key}{' bare' if result.name.startswith('bare') else ''}"


def main_table(results: list[Result]) -> None:
    print(f"\n{'':8}{'':36} {'jobs':>6} {'clients':>7} {'wall s':>7} {'jobs/s':>7} "
          f"{'CPU ms/job':>10} {'POST p50/p99 ms':>16} {'e2e p50/p99 ms':>16} "
          f"{'polls/job':>9} {'503s':>5} {'errors':>6}")  # fmt: skip
    for r in results:
        t = r.tally
        post = f"{1000 * quantile(t.post_s, 0.5):.1f}/{1000 * quantile(t.post_s, 0.99):.1f}"
        e2e = f"{1000 * quantile(t.e2e_s, 0.5):.0f}/{1000 * quantile(t.e2e_s, 0.99):.0f}"
        polls = f"{sum(t.polls) / len(t.polls):.1f}" if t.polls else "-"
        print(f"{label(r):8}{r.name:36} {r.jobs:6} {r.clients:7} {r.wall_s:7.1f} {r.rate:7.1f} "
              f"{r.cpu_ms:10.1f} {post if t.post_s else '-':>16} {e2e if t.e2e_s else '-':>16} "
              f"{polls:>9} {t.rejected:5} {t.errors:6}")  # fmt: skip
        if set(r.statuses) != {"completed"} or t.reconnects:
            print(f"{'':8}  job statuses {r.statuses}, reconnects {t.reconnects}")
        if t.first_error:
            print(f"{'':8}  first error: {t.first_error}")


def own_cpu_s(result: Result) -> float:
    """CPU-seconds of the system's own processes: not the shared PostgreSQL background, not
    the bench's polling connection."""
    shared = ("pg background", "bench db poll")
    return sum(s for role, s in result.cpu.by_role.items() if role not in shared)


def targets(results: list[Result]) -> None:
    by_key: dict[str, Result] = {}
    for r in results:
        by_key.setdefault(label(r), r)
    print()
    if (gateway := by_key.get("1")) and (bare := by_key.get("1 bare")):
        print(f"1  gateway / bare jobs/s            {verdict(gateway.rate / bare.rate, 0.5, True)}")
        print(
            f"1  gateway / bare CPU per job       {verdict(gateway.cpu_ms / bare.cpu_ms, 2, False)}"
        )
        # The same ratio counting only each system's own processes: on a shared machine other
        # load lands in the whole machine's numbers (and in PostgreSQL's shared background).
        own = own_cpu_s(gateway) / own_cpu_s(bare)
        print(f"1  the same, their processes only   {verdict(own, 2, False)}")
    if r3 := by_key.get("3"):
        print(f"3  accepted POSTs/s                 {r3.jobs / r3.accept_s:6.1f}")
    if r4 := by_key.get("4"):
        if gateway := by_key.get("1"):
            print(
                f"4  jobs/s / scenario 1 jobs/s       {verdict(r4.rate / gateway.rate, 0.7, True)}"
            )
        p99 = 1000 * quantile(r4.tally.healthz_s, 0.99)
        print(
            f"4  GET /healthz p99                 {p99:6.1f} ms ({len(r4.tally.healthz_s)} calls)"
        )
    if (r5 := by_key.get("5")) and len(r5.rss) == 2:
        (n1, rss1), (n2, rss2) = r5.rss
        print(
            f"5  worker RSS {rss1 / 2**20:.0f} MB after {n1} jobs, {rss2 / 2**20:.0f} MB after {n2}"
        )
        print(f"5  worker RSS ratio                 {verdict(rss2 / rss1, 1.2, False)}")


def cpu_table(results: list[Result]) -> None:
    """CPU ms per job of each process role, and how it adds up to the machine's."""
    print(f"\nCPU ms per job by process{'':15}" + "".join(f"{label(r):>9}" for r in results))

    def row(name: str, seconds: list[float]) -> None:
        cells = "".join(f"{1000 * s / r.jobs:9.2f}" for s, r in zip(seconds, results, strict=True))
        print(f"  {name:38}{cells}")

    for role in ROLES:
        row(role, [r.cpu.by_role.get(role, 0.0) for r in results])
    attributed = [sum(r.cpu.by_role.values()) for r in results]
    row("sum of the processes above", attributed)
    row(
        "unattributed (kernel, other load)",
        [r.cpu.system_s - a for r, a in zip(results, attributed, strict=True)],
    )
    row("machine - load generator (the key)", [r.cpu.system_s for r in results])
    row("load generator, not counted", [r.cpu.load_s for r in results])


def report(results: list[Result]) -> None:
    if not results:
        print("\nno scenario completed")
        return
    main_table(results)
    targets(results)
    cpu_table(results)
