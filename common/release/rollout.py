"""A staged rollout that rolls itself back: give a deployment a growing share of the live traffic, bake, judge its
metrics for that window, and restore the split from before the rollout as soon as a limit is crossed.

The plan (every step's split) is computed and checked before the first write; each step's split comes from the
split before the rollout by the same proportional rule as --traffic_allocation, so every split sums to 100. The
first write records the split before the rollout in the endpoint's rollback history (common/release/history.py); an
automatic rollback, or Ctrl-C, restores it and removes that entry again.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common import scoring
from common.azure.surface import Client
from common.errors import EXIT_ROLLED_BACK, CliError, InterruptedByUser, UsageError
from common.release import history, traffic
from common.release.metrics import DeploymentFigures, Figures, requests_text

if TYPE_CHECKING:
    from common.target import Target

# Azure's collector writes to workspaceblobstore some time after a request (its lag is not documented): the gate
# reads the bake's collected rows again until two reads agree, for at most this long, before it judges.
COLLECTED_WAIT_SECONDS = 300.0
COLLECTED_POLL_SECONDS = 30.0


@dataclass(frozen=True)
class ShadowGate:
    """--max_disagreement_percent: green mirrored for one bake before its first live step, compared with `live`."""

    max_disagreement_percent: float
    live: str
    source: Any  # common/monitoring/collected.py's source of pairs and collected records


def shadow_split(before: traffic.Split, deployment: str) -> traffic.Split:
    """The split of the shadow bake: the live split unchanged, `deployment` mirrored (at its own share if it has one).
    Refused (UsageError) when Azure's mirror rules would refuse it."""
    if before.live.get(deployment, 0):
        raise UsageError(
            f"--max_disagreement_percent compares {deployment!r} before it takes live traffic, but it takes "
            f"{before.live[deployment]}% already"
        )
    others = sorted(name for name in before.mirror if name != deployment)
    if others:
        raise UsageError(
            f"--max_disagreement_percent mirrors {deployment!r} for its bake, but {others[0]!r} takes the mirror "
            "traffic (Azure allows one mirror deployment): clear it first with traffic --mirror none"
        )
    # its own mirror share, else Azure's most: the most compared requests a bake can have
    return traffic.Split(before.live, {deployment: before.mirror.get(deployment, traffic.MAX_MIRROR_PERCENT)})


@dataclass(frozen=True)
class Limits:
    max_error_percent: float
    max_p95_ms: float
    min_requests: int


@dataclass(frozen=True)
class Verdict:
    crossed: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.crossed

    def text(self) -> str:
        return "ok" if self.passed else "FAILED: " + "; ".join(self.crossed)


def judge(figures: Figures, limits: Limits) -> Verdict:
    """Go on only with enough requests, an error percentage (4xx and 5xx) and a p95 within the limits. No data is
    never a pass: too few requests, or requests without a latency figure, fail the step."""
    crossed = []
    if figures.requests < limits.min_requests:
        crossed.append(f"{requests_text(figures.requests)}, fewer than --min_requests {limits.min_requests}")
    if figures.requests and figures.error_percent > limits.max_error_percent:
        crossed.append(
            f"error percentage {figures.error_percent:.1f}% ({figures.errors} of {figures.requests}) is above "
            f"--max_error_percent {limits.max_error_percent:g}"
        )
    if figures.requests and figures.p95_ms is None:
        crossed.append("no p95 latency was reported for the window")
    elif figures.p95_ms is not None and figures.p95_ms > limits.max_p95_ms:
        crossed.append(f"p95 {figures.p95_ms:.1f} ms is above --max_p95_ms {limits.max_p95_ms:g}")
    return Verdict(tuple(crossed))


def check_steps(steps: Sequence[int]) -> list[int]:
    if not steps or any(not 1 <= step <= 100 for step in steps):
        raise UsageError(f"invalid --steps {' '.join(map(str, steps))}: use percentages from 1 to 100")
    if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
        raise UsageError(f"invalid --steps {' '.join(map(str, steps))}: each step must be larger than the one before")
    return list(steps)


def plan(before: traffic.Split, deployment: str, steps: Sequence[int]) -> list[traffic.Split]:
    """Each step's split: `deployment` at the step's share, the others shrunk in proportion to their shares before
    the rollout, its own mirror share cleared (live or mirrored, not both)."""
    current = before.live.get(deployment, 0)
    if steps[0] < current:
        raise UsageError(
            f"{deployment!r} already takes {current}% of the live traffic: a rollout only raises its share, so the "
            f"first step must be at least {current}"
        )
    splits = []
    for step in steps:
        live = traffic.rebalance(before.live, deployment, step)
        splits.append(traffic.Split(live, traffic.without_live_mirrors(live, before.mirror)[0]))
    return splits


@dataclass
class StepRecord:
    step: int
    percent: int
    split: traffic.Split
    figures: Figures
    verdict: Verdict
    started: float
    ended: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "percent": self.percent,
            "traffic": self.split.live,
            "started": _clock_text(self.started),
            "ended": _clock_text(self.ended),
            **self.figures.as_dict(),
            "verdict": self.verdict.text(),
        }


class RolledBack(CliError):
    exit_code = EXIT_ROLLED_BACK


class ChangedMeanwhile(CliError):
    """Someone else changed the traffic during the rollout: it is left as they set it, not restored over them."""


class Prober:
    """--probe_requests: the request body sent `count` times through the endpoint's scoring URI during each bake,
    spread evenly over it, as clients would (so the traffic split picks the deployment)."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes, count: int) -> None:
        self.url, self.headers, self.body, self.count = url, headers, body, count

    def bake(self, seconds: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        import httpx

        started = clock()
        with httpx.Client(timeout=scoring.PROBE_TIMEOUT_SECONDS) as http:
            for sent in range(self.count):
                due = started + seconds * sent / self.count
                if clock() < due:
                    sleep(due - clock())
                # the front door counts what it answered; a request it never saw is not the deployment's doing
                with contextlib.suppress(httpx.TransportError):
                    http.post(self.url, content=self.body, headers=self.headers)
        if clock() < started + seconds:
            sleep(started + seconds - clock())


@dataclass
class Rollout:
    """One rollout of `deployment` on `endpoint_name`; `run` prints each step through `report` as it happens."""

    client: Client
    endpoint_name: str
    deployment: str
    steps: list[int]
    bake_seconds: float
    limits: Limits
    target: Target
    source: Any  # metrics.LocalMetrics or metrics.AzureMonitorMetrics
    report: Callable[[str], None]
    prober: Prober | None = None
    shadow_gate: ShadowGate | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    records: list[StepRecord] = field(default_factory=list)
    shadow_comparison: Any = None  # the shadow bake's common/release/shadow.py Comparison, once made
    recorded: bool = False  # the rollout has changed the traffic (and remembered the split from before it)

    @property
    def change(self) -> str:
        return f"rollout {self.deployment} {' '.join(map(str, self.steps))}"

    def run(self, before: traffic.Split) -> traffic.Split:
        """Roll out; the final split, or RolledBack / CliError(EXIT_INTERRUPTED) after restoring `before`."""
        splits = plan(before, self.deployment, self.steps)
        self.report(f"Rollout of {self.deployment} on {self.endpoint_name}, from: {before.describe()}")
        self.recorded = False
        expected = before
        try:
            if self.shadow_gate is not None:
                expected = self._shadow_bake(before, self.shadow_gate)
            for index, (percent, split) in enumerate(zip(self.steps, splits, strict=True), start=1):
                label = f"step {index}/{len(self.steps)}"
                was, now = history.change_split(
                    self.client,
                    self.endpoint_name,
                    self._unless_changed(expected, split),
                    target=self.target,
                    change=self.change,
                    remember=not self.recorded,
                )
                self.recorded = self.recorded or was != now
                expected = split
                self.report(
                    f"[{_clock_text(self.clock())}] {label}: {traffic.describe(split.live)}; baking "
                    f"{self.bake_seconds:g} s{self._probing}"
                )
                started, ended = self._bake()
                found: DeploymentFigures = self.source.settled(self.deployment, started, ended)
                verdict = judge(found.live, self.limits)
                record = StepRecord(index, percent, split, found.live, verdict, started, ended)
                self.records.append(record)
                self.report(
                    f"[{_clock_text(self.clock())}] {label}: {self.deployment} {percent}%: {_figures_text(found.live)}"
                    f" -> {verdict.text()}"
                )
                if not verdict.passed:
                    restored = self._restore(before)
                    raise RolledBack(
                        f"rollout of {self.deployment} rolled back at {label} ({self.deployment}={percent}%): "
                        + "; ".join(verdict.crossed),
                        details="\n".join(traffic.change_lines(split, restored)),
                    )
        except KeyboardInterrupt:
            self._interrupted(before)
        except (RolledBack, ChangedMeanwhile):
            raise
        except CliError as error:
            if isinstance(error, InterruptedByUser):
                self._interrupted(before)
            raise self._restored_after(error, before) from None
        except Exception as error:  # whatever failed mid-rollout (a comparison, a metrics read): the split goes back
            raise self._restored_after(CliError(f"{type(error).__name__}: {error}"), before) from error
        return expected

    def _restored_after(self, error: CliError, before: traffic.Split) -> CliError:
        """`error`, once the split and mirror from before the rollout are back (when the rollout changed them), and
        saying so; its exit code kept."""
        if not self.recorded:
            return error
        try:
            restored = self._restore(before)
        except Exception as failure:  # said beside the first failure, which stays the one reported
            note = f"; restoring the split from before it failed too ({failure}): {self.target.verb('rollback')}"
        else:
            note = f"; the split from before the rollout is restored ({restored.describe()})"
        return error.reworded(f"rollout of {self.deployment} stopped: {error.message}{note}")

    @property
    def _probing(self) -> str:
        return f", sending {self.prober.count} probe requests" if self.prober else ""

    def _bake(self) -> tuple[float, float]:
        started = self.clock()
        if self.prober is not None:
            self.prober.bake(self.bake_seconds, self.clock, self.sleep)
        else:
            self.sleep(self.bake_seconds)
        return started, self.clock()

    def _shadow_bake(self, before: traffic.Split, gate: ShadowGate) -> traffic.Split:
        """Mirror the deployment for one bake and compare its answers with the live deployment's; restore `before`
        and raise RolledBack when they disagree on more than the limit or too few requests were compared."""
        from common.release import shadow

        split = shadow_split(before, self.deployment)
        history.change_split(
            self.client,
            self.endpoint_name,
            self._unless_changed(before, split),
            target=self.target,
            change=self.change,
            remember=True,
        )
        self.recorded = True
        self.report(
            f"[{_clock_text(self.clock())}] shadow bake: {self.deployment} mirrored "
            f"{split.mirror[self.deployment]}%; baking {self.bake_seconds:g} s{self._probing}"
        )
        started, ended = self._bake()
        if self.target.local:  # the front door's pairs are in their files within a flush
            found = shadow.gather(gate.source, gate.live, self.deployment, started, ended, local=True)
        else:
            found = self._collected_comparison(gate, started, ended)
        self.shadow_comparison = found
        crossed = []
        if found.rows < self.limits.min_requests:
            crossed.append(
                f"{found.rows} compared requests' rows, fewer than --min_requests {self.limits.min_requests} (too few "
                "to judge is never a pass)"
            )
        crossed += shadow_errors_crossed(found, self.deployment, self.limits)
        disagreement = found.disagreement_percent
        if disagreement is not None and disagreement > gate.max_disagreement_percent:
            crossed.append(
                f"{self.deployment} disagrees with {gate.live} on {disagreement:.1f}% of {found.rows} compared rows, "
                f"above --max_disagreement_percent {gate.max_disagreement_percent:g}"
            )
        verdict = Verdict(tuple(crossed))
        figure = "n/a" if disagreement is None else f"{disagreement:.1f}%"
        self.report(
            f"[{_clock_text(self.clock())}] shadow bake: {found.rows} rows compared with {gate.live}, disagreement "
            f"{figure} -> {verdict.text()}"
        )
        if not verdict.passed:
            restored = self._restore(before)
            raise RolledBack(
                f"rollout of {self.deployment} stopped before its first live step: " + "; ".join(verdict.crossed),
                details="\n".join(traffic.change_lines(split, restored)),
            )
        return split

    def _collected_comparison(self, gate: Any, started: float, ended: float) -> Any:
        """On Azure, the bake's comparison once its collected rows have arrived: read every COLLECTED_POLL_SECONDS
        until two reads find the same rows (and some), for at most COLLECTED_WAIT_SECONDS, said as it goes."""
        from common.release import shadow

        self.report(
            f"[{_clock_text(self.clock())}] shadow bake: waiting up to {COLLECTED_WAIT_SECONDS:g} s for the bake's "
            "collected rows (Azure's collector writes them to workspaceblobstore with a delay)"
        )
        deadline = self.clock() + COLLECTED_WAIT_SECONDS
        found = shadow.gather(gate.source, gate.live, self.deployment, started, ended, local=False)
        while self.clock() < deadline:
            self.sleep(min(COLLECTED_POLL_SECONDS, max(0.0, deadline - self.clock())))
            gate.source.skipped.clear()  # each read counts what it skips afresh: the last read's count is said
            again = shadow.gather(gate.source, gate.live, self.deployment, started, ended, local=False)
            settled = again.rows == found.rows and again.rows > 0
            found = again
            if settled:
                break
        else:
            self.report(
                f"[{_clock_text(self.clock())}] shadow bake: the collected rows did not settle within "
                f"{COLLECTED_WAIT_SECONDS:g} s; judging the {found.rows} there are"
            )
        return found

    def _unless_changed(
        self, expected: traffic.Split, target: traffic.Split
    ) -> Callable[[traffic.Split], traffic.Split]:
        def decide(current: traffic.Split) -> traffic.Split:
            if current != expected:
                raise ChangedMeanwhile(
                    f"the traffic of {self.endpoint_name} changed during the rollout ({current.describe()}; the "
                    f"rollout set {expected.describe()}): stopping and leaving it as it is; "
                    f"{self.target.verb('rollback')} restores the split from before the rollout"
                )
            return target

        return decide

    def _restore(self, before: traffic.Split) -> traffic.Split:
        """Back to the split from before the rollout, taking the rollout's entry out of the history again."""
        self.report(f"Restoring the split from before the rollout: {before.describe()}")
        latest = history.entries(self.client.online_endpoints.get(self.endpoint_name).tags)
        if self.recorded and latest and latest[0].change == self.change and latest[0].before == before:
            deployments = {d.name for d in self.client.online_deployments.list(self.endpoint_name)}
            _, after, _ = history.roll_back(self.client, self.endpoint_name, deployments, target=self.target)
            return after
        _, after = history.change_split(
            self.client, self.endpoint_name, lambda _current: before, target=self.target, change="", remember=False
        )
        return after

    def _interrupted(self, before: traffic.Split) -> None:
        restored = self._restore(before)
        raise InterruptedByUser(
            f"interrupted: the rollout of {self.deployment} stopped and the split from before it is restored "
            f"({restored.describe()})"
        )


def shadow_errors_crossed(found: Any, deployment: str, limits: Limits) -> list[str]:
    """The shadow's own error rate against --max_error_percent: a shadow that fails more than a live step may is not
    agreeing, however well its few answers agree (94 failures of 100 passed the gate on the 6 that answered)."""
    figures = found.shadow_figures
    if figures.errors is None or not figures.requests:
        return []  # Azure: errors are not in the collected data (metrics judge the live steps)
    percent = 100.0 * figures.errors / figures.requests
    if percent <= limits.max_error_percent:
        return []
    statuses = f"; status {figures.statuses_text()}" if figures.error_statuses else ""
    return [
        f"{deployment} failed {figures.errors} of {figures.requests} mirrored requests ({percent:.1f}%{statuses}), "
        f"above --max_error_percent {limits.max_error_percent:g}"
    ]


def _figures_text(figures: Figures) -> str:
    p95 = "n/a" if figures.p95_ms is None else f"{figures.p95_ms:.1f} ms"
    return (
        f"{requests_text(figures.requests)}, {figures.errors} errors ({figures.error_percent:.1f}%: "
        f"4xx {figures.client_errors}, 5xx {figures.server_errors}), p95 {p95}"
    )


def _clock_text(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch).strftime("%H:%M:%S")
