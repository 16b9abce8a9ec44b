"""Small builders for tests that go through the real services."""

from django.contrib.auth import get_user_model
from django.utils import timezone

from webapp.core import execution, services
from webapp.core.choices import ArtifactState
from webapp.core.models import Artifact, Task


def make_user(username="alice", staff=False):
    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": staff}
    )
    return user


def make_base_task(user, name, project="examples", params=None, code="print('hi')"):
    return services.create_task(
        user=user,
        project_name=project,
        name=name,
        script={"entry_point": f"{name}.py", "code": code},
        hyperparameters={"General": params or {}},
    )


def make_controller(user, name="pipeline demo"):
    return services.create_task(
        user=user, project_name="examples", name=name, task_type="controller", start_running=True
    )


def run_as_worker(task: Task, outcome="completed", artifacts=None, worker="test-worker"):
    """What a step worker does through the API: claim the attempt, then report its end."""
    task.refresh_from_db()
    claimed = execution.claim_task(task.id, task.attempt, worker)
    assert claimed is not None, f"task {task.id} was not claimable ({task.status})"
    for name in artifacts or []:
        Artifact.objects.create(
            task=task,
            name=name,
            kind="file",
            filename=f"{name}.bin",
            url=f"http://127.0.0.1:8000/files/{task.id}/{name}.bin",
            state=ArtifactState.READY,
            sha256="0" * 64,
            updated=timezone.now(),
        )
    return execution.finish_task(task, task.attempt, outcome, reason=f"exit {outcome}")
