import pytest


@pytest.fixture
def stranger_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("stranger", password="x"))
    return client
