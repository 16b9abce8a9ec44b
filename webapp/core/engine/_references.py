"""Resolving a step's references (`${step.id}`, `${step.artifacts.x.url}`, `${pipeline.p}`,
...) against the run's nodes and their tasks."""

from pipelines import dag

from ..choices import ArtifactState
from ..models import Artifact
from ._pass import Pass


def reference_lookup(work: Pass, nodes: dict):
    artifacts: dict = {}  # children of one step often read the same artifact

    def lookup(ref: dag.Reference):
        if ref.kind == "pipeline":
            if ref.name not in work.shape.parameters:
                raise dag.UnresolvedReference(ref, f"no pipeline parameter {ref.name!r}")
            return work.shape.parameters[ref.name]
        node = nodes.get(ref.step)
        if node is None or node.task is None:
            raise dag.UnresolvedReference(ref, f"step {ref.step!r} has no task")
        task = node.task
        if ref.kind == "id":
            return task.id
        if ref.kind == "task_field":
            return getattr(task, ref.field)
        if ref.kind == "parameter":
            section, _, key = ref.name.partition("/")
            entry = task.hyperparameters.get(section, {}).get(key)
            if entry is None:
                raise dag.UnresolvedReference(ref, f"task {task.id} has no parameter {ref.name}")
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
            return getattr(artifact, ref.field)
        raise dag.UnresolvedReference(ref, "unsupported reference")

    return lookup
