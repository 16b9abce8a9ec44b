"""Resolving a step's references (`${step.id}`, `${step.artifacts.x.url}`, `${pipeline.p}`,
...) against the run's nodes and their tasks."""

from pipelines import dag

from ..choices import ArtifactState
from ..models import Artifact
from ._pass import Pass


def reference_lookup(work: Pass, nodes: dict):
    """The lookup `dag.resolve_overrides` takes. What each reference read is noted in its
    `seen` ({what: value}, an artifact by its hash), which the caller empties per step: a
    step's reason to run names the parent output that changed (_why.py)."""
    artifacts: dict = {}  # children of one step often read the same artifact

    def lookup(ref: dag.Reference):
        if ref.kind == "pipeline":
            if ref.name not in work.shape.parameters:
                raise dag.UnresolvedReference(ref, f"no pipeline parameter {ref.name!r}")
            lookup.seen[f"pipeline.{ref.name}"] = work.shape.parameters[ref.name]
            return work.shape.parameters[ref.name]
        node = nodes.get(ref.step)
        if node is None or node.task is None:
            raise dag.UnresolvedReference(ref, f"step {ref.step!r} has no task")
        task = node.task
        if ref.kind == "id":
            lookup.seen[f"{ref.step}.id"] = task.id
            return task.id
        if ref.kind == "task_field":
            lookup.seen[f"{ref.step}.{ref.field}"] = getattr(task, ref.field)
            return getattr(task, ref.field)
        if ref.kind == "parameter":
            section, _, key = ref.name.partition("/")
            entry = task.hyperparameters.get(section, {}).get(key)
            if entry is None:
                raise dag.UnresolvedReference(ref, f"task {task.id} has no parameter {ref.name}")
            lookup.seen[f"{ref.step}.parameters.{ref.name}"] = entry["value"]
            return entry["value"]
        if ref.kind == "artifact":
            if (task.id, ref.name) not in artifacts:
                artifacts[task.id, ref.name] = Artifact.objects.filter(
                    task=task, name=ref.name
                ).first()
            artifact = artifacts[task.id, ref.name]
            if artifact is None:
                raise dag.UnresolvedReference(
                    ref, f"step {ref.step!r} has no artifact {ref.name!r}"
                )
            if artifact.state != ArtifactState.READY:
                raise dag.UnresolvedReference(ref, f"artifact {ref.name!r} is not ready")
            if not hasattr(artifact, ref.field) or ref.field in ("task", "storage_key"):
                raise dag.UnresolvedReference(ref, f"artifacts have no field {ref.field!r}")
            lookup.seen[f"{ref.step}.artifacts.{ref.name}"] = artifact.sha256 or artifact.url
            return getattr(artifact, ref.field)
        raise dag.UnresolvedReference(ref, "unsupported reference")

    lookup.seen = {}
    return lookup
