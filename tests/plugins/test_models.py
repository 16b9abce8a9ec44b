from webapp.core import trained_models
from webapp.core.models import TrainedModel
from webapp.plugins.plots.figures import latest_plots


def _model(task, name, **fields):
    model = trained_models.declare_model(
        task, name=name, filename=f"{name}.pkl", size=3, base_url="http://testserver/", **fields
    )
    TrainedModel.objects.filter(pk=model.pk).update(state="ready", sha256="0" * 64)
    return TrainedModel.objects.get(pk=model.pk)


def test_the_models_tab_lists_output_and_input_models_and_strangers_see_none(
    admin_client, task, stranger_client
):
    trained = _model(task, "classifier", framework="ScikitLearn", tags=["best"])
    trained_models.connect_input_model(task, trained, "warm start")
    body = admin_client.get(f"/tasks/{task.id}/models/").content.decode()
    assert 'data-model="classifier"' in body and "ScikitLearn" in body and "best" in body
    assert 'data-model="warm start"' in body
    assert f"/api/v1/models/{trained.id}/download/" in body
    listing = admin_client.get("/models/").content.decode()
    assert f'data-model-id="{trained.id}"' in listing
    assert stranger_client.get(f"/tasks/{task.id}/models/").status_code == 404
    assert f'data-model-id="{trained.id}"' not in stranger_client.get("/models/").content.decode()


class _Row:
    def __init__(self, figure):
        self.title, self.series, self.iteration, self.figure = "t", "s", 0, figure


def test_a_picture_figure_is_shown_as_the_picture_and_only_with_a_safe_source():
    png = "data:image/png;base64,iVBORw0KGgo="
    shown = latest_plots([_Row({"data": [], "layout": {"images": [{"source": png}]}})])
    assert shown[0]["image"] == png
    for source in ("javascript:alert(1)", "data:text/html;base64,PGgxPg=="):
        row = _Row({"data": [], "layout": {"images": [{"source": source}]}})
        assert latest_plots([row])[0]["image"] == ""
    chart = _Row({"data": [{"type": "bar"}], "layout": {"images": [{"source": png}]}})
    assert latest_plots([chart])[0]["image"] == ""
