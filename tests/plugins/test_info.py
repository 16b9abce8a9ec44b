from webapp.core import services


def test_info_links_the_parent_and_only_the_children_the_user_may_see(client, django_user_model):
    owner = django_user_model.objects.create_user("owner")
    other = django_user_model.objects.create_user("other")
    task = services.create_task(user=owner, project_name="mine", name="base")
    child = services.clone_task(task, user=owner, name="my clone")
    services.clone_task(task, user=other, name="their clone", project_name="theirs")
    client.force_login(owner)
    child_page = client.get(f"/tasks/{child.id}/info/").content.decode()
    assert f'href="/tasks/{task.id}/"' in child_page
    parent_page = client.get(f"/tasks/{task.id}/info/").content.decode()
    assert "my clone" in parent_page
    assert "their clone" not in parent_page
