import pytest

from webapp.core import services


@pytest.fixture
def task(db, admin_user):
    return services.create_task(user=admin_user, project_name="dash", name="subject")


@pytest.fixture
def stranger_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("stranger", password="x"))
    return client
