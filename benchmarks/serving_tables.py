"""The serving benchmark's tables (benchmarks/serving.py measures, this prints): each figure beside its target."""

from __future__ import annotations

import statistics

from benchmarks.load import Cell

TARGETS = {
    "overhead_ms": 0.1,  # front door p50 - direct p50, 1 connection, median of alternated rounds (capture off)
    "overhead_capture_ms": 0.5,  # the same for a deployment collecting model_inputs and model_outputs at 100%
    "throughput_1": 0.80,  # front door requests/s over direct, 1 connection
    "throughput_8": 0.95,  # the same, 8 connections
    "capture_ms": 0.1,  # data capture's cost on the front door's p50 at 1 connection
    "run_1": 1.1,  # run() over bare predict, 1 row
    "run_many": 1.2,  # the same, 1,000 and 10,000 rows
    "busy_p99": 2.0,  # live 1-row p99 while a 5 MB request is captured / read back, over the same p99 without
}


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def print_cells(cells: list[Cell], generator: str) -> None:
    print(f"\nHTTP, canonical 1-row request ({generator})")
    print(f"{'path':12} {'conns':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'non-2xx':>8} {'requests':>9}")
    for cell in cells:
        print(
            f"{cell.path:12} {cell.connections:5d} {cell.p50_ms:8.2f} {cell.p99_ms:8.2f} {cell.per_second:8.1f} "
            f"{cell.non_2xx:8d} {cell.requests:9d}"
        )
    print(f"\n{'connections':>11} {'overhead p50 ms':>16} {'throughput ratio':>17}  target")
    by_key = {(c.path, c.connections): c for c in cells}
    for connections in sorted({c.connections for c in cells}):
        direct, front = by_key[("direct", connections)], by_key[("front door", connections)]
        overhead = front.p50_ms - direct.p50_ms
        ratio = front.per_second / direct.per_second
        target = ""
        if connections == 1:  # its overhead is judged on the alternated rounds below: one cell each is too noisy
            target = f"ratio >= {TARGETS['throughput_1']:.0%}: {verdict(ratio >= TARGETS['throughput_1'])}"
        elif connections == 8:
            target = f"ratio >= {TARGETS['throughput_8']:.0%}: {verdict(ratio >= TARGETS['throughput_8'])}"
        print(f"{connections:11d} {overhead:16.3f} {ratio:16.1%}  {target}")


# one round: each measured once, in this order; "bare proxy" is the control (the hop without the front door's work)
ROUND_PATHS = ("direct", "bare proxy", "front door", "named", "collecting")


def print_overhead(cells: list[Cell]) -> None:
    """The front door's cost on the p50 at 1 connection, from alternated rounds (a busy machine's drift falls on
    every path alike): the median of each round's difference to the direct server, with capture off (the traffic
    split) and on (a twin collecting model_inputs and model_outputs of every request, named in the header), and
    capture's own cost (collecting against the same deployment named without collection)."""
    print("\nFront door overhead at 1 connection (alternated rounds; median of the rounds' p50 differences)")
    rounds = [cells[i : i + len(ROUND_PATHS)] for i in range(0, len(cells), len(ROUND_PATHS))]
    for number, cells_of_round in enumerate(rounds, 1):
        figures = ", ".join(f"{c.path} {c.p50_ms:.3f}" for c in cells_of_round)
        print(f"  round {number}: p50 ms {figures}; collecting p99 {cells_of_round[-1].p99_ms:.2f} ms")
    p50 = [{c.path: c.p50_ms for c in cells_of_round} for cells_of_round in rounds]
    for label, path, base, target in (
        ("front door - direct, capture off", "front door", "direct", TARGETS["overhead_ms"]),
        ("front door - direct, capture on", "collecting", "direct", TARGETS["overhead_capture_ms"]),
        ("capture's own cost (collecting - named)", "collecting", "named", TARGETS["capture_ms"]),
        ("the hop alone (bare proxy - direct)", "bare proxy", "direct", None),
        ("the front door's own work (- bare proxy)", "front door", "bare proxy", None),
    ):
        overhead = statistics.median(r[path] - r[base] for r in p50)
        judged = f"; target < {target} ms: {verdict(overhead < target)}" if target is not None else ""
        print(f"  {label:40} {overhead:7.3f} ms{judged}")


BUSY_BASELINES = {  # each busy cell against the cell without what is measured: capture's own cost, the reads' own
    "while 5 MB requests are captured": "while 5 MB requests are served",
    "while captured data is read": "alone",
}


def print_busy(cells: list[Cell]) -> None:
    """The live deployment's 1-row p99 at 1 connection: alone, beside 5 MB requests served by a twin (the CPU they
    take), beside the same requests captured by the collecting twin, and beside the captured data being read
    back. Capture and the reads must keep the live p99 within 2x of the same p99 without them."""
    print("\nLive requests beside capture (1 row, 1 connection, the live deployment; p99 within 2x of without it)")
    by_path = {cell.path: cell for cell in cells}
    limit = TARGETS["busy_p99"]
    for cell in cells:
        base = by_path.get(BUSY_BASELINES.get(cell.path, ""))
        target = ""
        if base is not None:
            ratio = cell.p99_ms / base.p99_ms if base.p99_ms else float("nan")
            target = f"  x{ratio:.2f} of {base.path!r}; target <= {limit:g}x: {verdict(ratio <= limit)}"
        print(f"  {cell.path:32} p50 {cell.p50_ms:6.3f} ms, p99 {cell.p99_ms:6.2f} ms, non-2xx {cell.non_2xx}{target}")


def print_run(results: list[tuple[int, float, float]]) -> None:
    print("\nscore.py in-process: run() on the JSON body vs model.predict on a ready DataFrame (best of 7)")
    print(f"{'rows':>6} {'run() ms':>9} {'predict ms':>11} {'ratio':>6}  target")
    for count, run, bare in results:
        limit = TARGETS["run_1"] if count == 1 else TARGETS["run_many"] if count >= 1000 else None
        ratio = run / bare
        target = f"<= {limit}: {verdict(ratio <= limit)}" if limit else ""
        print(f"{count:6d} {run * 1000:9.3f} {bare * 1000:11.3f} {ratio:6.2f}  {target}")
