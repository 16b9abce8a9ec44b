import pytest

from webapp.core import services


@pytest.fixture
def task(db, admin_user):
    """A draft with parameters in two sections, owned by the admin user."""
    return services.create_task(
        user=admin_user,
        project_name="plugins",
        name="subject",
        script={"entry_point": "train.py", "code": "print('hi')\n", "requirements": ["numpy"]},
        hyperparameters={"General": {"lr": 0.1, "epochs": 3}, "Args": {"seed": 1}},
    )


@pytest.fixture
def stranger_client(client, django_user_model):
    """A logged-in user who owns nothing."""
    user = django_user_model.objects.create_user("stranger", password="x")
    client.force_login(user)
    return client
