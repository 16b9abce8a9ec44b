"""The verbs ClearML's queues.* and projects.* use: deleting a project never deletes work,
renaming one takes its subprojects along, and deleting or clearing a queue puts its
waiting tasks back to drafts."""

import pytest

from tests.factories import make_base_task, make_user
from webapp.core import project_verbs, queue_verbs, services
from webapp.core.errors import Conflict, InvalidInput
from webapp.core.models import Project, Queue, Task

pytestmark = pytest.mark.django_db


def test_a_project_holding_a_task_is_not_deleted():
    user = make_user()
    task = make_base_task(user, "kept", project="full")
    with pytest.raises(Conflict, match="tasks"):
        services.delete_empty_projects([task.project])
    assert Task.objects.filter(pk=task.pk).exists()
    empty = services.get_or_create_project("empty", user)
    assert services.delete_empty_projects([empty]) == 1
    assert not Project.objects.filter(pk=empty.pk).exists()


def test_deleting_a_queue_needs_force_for_waiting_tasks_and_keeps_the_default_ones():
    user = make_user()
    queue = services.get_or_create_queue("spare queue")
    task = services.enqueue_task(make_base_task(user, "waiting"), queue.name)
    with pytest.raises(Conflict, match="waiting"):
        queue_verbs.delete_queue(queue)
    assert queue_verbs.delete_queue(queue, force=True) == [task.pk]
    task.refresh_from_db()
    assert task.status == "created" and not Queue.objects.filter(pk=queue.pk).exists()
    with pytest.raises(Conflict, match="stays"):
        queue_verbs.delete_queue(services.get_or_create_queue("default"), force=True)


def test_a_waiting_task_is_placed_at_an_index_clipped_to_its_queue():
    user = make_user()
    tasks = [services.enqueue_task(make_base_task(user, f"t{i}"), "default") for i in range(3)]
    assert queue_verbs.move_queue_entry_to(tasks[0], 99) == 2
    assert queue_verbs.move_queue_entry_to(tasks[0], -5) == 0
    assert queue_verbs.move_queue_entry_to(tasks[2], 1) == 1
    order = Task.objects.filter(queue_entry__queue__name="default").order_by(
        "queue_entry__position"
    )
    assert [t.pk for t in order] == [tasks[0].pk, tasks[2].pk, tasks[1].pk]


def test_a_renamed_project_takes_its_subprojects_and_a_taken_name_renames_none():
    user = make_user()
    old = services.get_or_create_project("old", user)
    task = make_base_task(user, "inside", project="old/child")
    services.get_or_create_project("taken/child", user)
    with pytest.raises(Conflict, match="taken/child"):
        project_verbs.rename_project(old, "taken")
    assert set(Project.objects.filter(name__startswith="old").values_list("name", flat=True)) == {
        "old",
        "old/child",
    }
    with pytest.raises(InvalidInput, match="under itself"):
        project_verbs.rename_project(old, "old/child/x")
    assert project_verbs.rename_project(old, "new") == 2
    task.refresh_from_db()
    assert task.project.name == "new/child"


def test_a_moved_task_is_in_its_new_project_only():
    user = make_user()
    task = make_base_task(user, "mover", project="from")
    target = services.get_or_create_project("to", user)
    project_verbs.move_task(task, target)
    assert list(Task.objects.filter(project__name="to").values_list("pk", flat=True)) == [task.pk]
    assert not Task.objects.filter(project__name="from").exists()
