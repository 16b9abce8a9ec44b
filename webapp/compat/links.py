"""The web links the ClearML SDK prints, landing on our pages.

The SDK builds them from CLEARML_WEB_HOST as clearml-server's web app lays them out:
`Task.get_output_log_web_page()` and "ClearML results page" are
`/projects/<project>/tasks/<task>/output/log`, the "ClearML pipeline page" is
`/pipelines/<project>/experiments/<controller>`. Each redirects to our task page, or to the
mirrored run page of a pipeline's controller; a task the user does not see is not found.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect

from webapp.core import access
from webapp.core.choices import PipelineDriver
from webapp.core.models import PipelineRun


def _visible(request, task_id: str):
    task = access.visible_tasks(request.user).filter(pk=task_id).first()
    if task is None:
        raise Http404("no such task")
    return task


@login_required
def task_page(request, project_id: str, task_id: str, rest: str = ""):
    return redirect("dashboard:task", task_id=_visible(request, task_id).pk)


@login_required
def pipeline_page(request, project_id: str, task_id: str, rest: str = ""):
    controller = _visible(request, task_id)
    run = PipelineRun.objects.filter(driver=PipelineDriver.CLEARML, controller=controller).first()
    if run is None:
        return redirect("dashboard:task", task_id=controller.pk)
    return redirect("dashboard:pipeline_run", run_id=run.pk)
