"""Plans and reruns from the SDK: which steps a run would run and which reuse, and why
(`Plan`), and running an ended run again from one of its steps with edits
(`PipelineController.rerun`, `rerun_from_step`). Only REST calls, through the client."""

import time
from dataclasses import dataclass, field
from typing import Any

from .client import get_client
from .run_driver import TERMINAL, poll_pause

__all__ = ["Plan", "PlanStep", "PipelineRun", "rerun_from_step", "plan_rerun"]


@dataclass
class PlanStep:
    """One step of a plan: `outcome` is "ran" (it would run), "reused", "fails" or
    "skipped"; `reason` says why; `changes` lists what differs from its last run."""

    name: str
    outcome: str
    code: str
    reason: str
    changes: list = field(default_factory=list)
    task: str | None = None

    @property
    def runs(self) -> bool:
        return self.outcome == "ran"


@dataclass
class Plan:
    """What starting a run would do, step by step (`plan.steps`, or `plan["stage_data"]`);
    print it for a table."""

    steps: list[PlanStep]

    @classmethod
    def from_answer(cls, answer: dict) -> "Plan":
        return cls([PlanStep(**step) for step in answer["steps"]])

    def __getitem__(self, name: str) -> PlanStep:
        return next(step for step in self.steps if step.name == name)

    @property
    def to_run(self) -> list[str]:
        return [step.name for step in self.steps if step.outcome == "ran"]

    @property
    def to_reuse(self) -> list[str]:
        return [step.name for step in self.steps if step.outcome == "reused"]

    def __str__(self) -> str:
        width = max((len(step.name) for step in self.steps), default=4)
        lines = [f"{'step':<{width}}  {'would':<8}  why"]
        for step in self.steps:
            word = "run" if step.outcome == "ran" else step.outcome
            lines.append(f"{step.name:<{width}}  {word:<8}  {step.reason}")
            lines.extend(
                f"{'':<{width}}  {'':<8}  - {change['text']}"
                for change in step.changes
                if change.get("text") != step.reason
            )
        return "\n".join(lines)


class PipelineRun:
    """A run on the server, as a rerun returns it: its id, nodes and status, and wait()."""

    def __init__(self, data: dict, client=None):
        self._client = client or get_client()
        self._data = data

    @property
    def id(self) -> str:
        return self._data["id"]

    @property
    def status(self) -> str:
        return self._data["status"]

    @property
    def rerun_of(self) -> str | None:
        return self._data.get("rerun_of")

    @property
    def nodes(self) -> dict[str, dict]:
        """Each node as the API shows it ({status, task, decision, ...}) by step name."""
        return {node["name"]: node for node in self._data["nodes"]}

    def refresh(self) -> "PipelineRun":
        self._data = self._client.get(f"pipelines/{self.id}/")
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (timeout in minutes, as ClearML); False on timeout."""
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout * 60
        while self.refresh().status not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(poll_pause(started))
        return True

    def diff(self, other: str | None = None) -> dict:
        """This run beside `other` (by default the run before it), aligned by step."""
        return self._client.get(f"pipelines/{self.id}/diff/", **({"other": other} if other else {}))


def _body(from_step: str, parameter_override: dict | None, dry_run: bool) -> dict[str, Any]:
    return {
        "step": from_step,
        "parameter_override": parameter_override or {},
        "dry_run": dry_run,
    }


def rerun_from_step(
    run_id: str, from_step: str, parameter_override: dict | None = None
) -> PipelineRun:
    """Start a new run of the ended run `run_id` from `from_step`: the completed steps
    outside its subtree are reused (the same tasks and artifacts), `from_step` and the
    steps below it run, with `parameter_override` ({step: {"Section/name": value}})."""
    client = get_client()
    answer = client.post(
        f"pipelines/{run_id}/rerun_from/", _body(from_step, parameter_override, False)
    )
    return PipelineRun(answer, client)


def plan_rerun(run_id: str, from_step: str, parameter_override: dict | None = None) -> Plan:
    """The plan of rerun_from_step() with the same arguments; nothing is started."""
    answer = get_client().post(
        f"pipelines/{run_id}/rerun_from/", _body(from_step, parameter_override, True)
    )
    return Plan.from_answer(answer)


def plan_definition(project: str, name: str, steps: list, parameters: dict) -> Plan:
    answer = get_client().post(
        "pipelines/plan/",
        {"project": project, "name": name, "steps": steps, "parameters": parameters},
    )
    return Plan.from_answer(answer)
