"""models.*_many: one model endpoint applied to many models, each on its own (one refused
or missing does not stop the others), answered with `succeeded` and `failed` lists."""

from django.utils import timezone

from ..registry import endpoint
from ..task_models import delete_model
from . import models
from .task_batches import each


@endpoint("models.publish_many", verb="model.write")
def publish_many(call):
    def one(single):
        model = models.get_model(single, single.body["model"])
        published_task = models.publish_model(
            single,
            model,
            publish_task_too=single.flag("publish_task", True),
            force=single.flag("force_publish_task"),
        )
        return {"updated": True, "published_task": published_task}

    return each(call, one, field="model")


def _archiving(call, archived: bool) -> dict:
    def one(single):
        model = models.get_model(single, single.body["model"])
        tags = [t for t in model.system_tags or [] if t != "archived"]
        model.system_tags = tags + ["archived"] if archived else tags
        model.last_update = timezone.now()
        model.save(update_fields=["system_tags", "last_update"])
        return {"archived" if archived else "unarchived": True}

    return each(call, one, field="model")


@endpoint("models.archive_many", verb="model.write")
def archive_many(call):
    return _archiving(call, archived=True)


@endpoint("models.unarchive_many", verb="model.write")
def unarchive_many(call):
    return _archiving(call, archived=False)


@endpoint("models.delete_many", verb="model.write")
def delete_many(call):
    def one(single):
        model = models.get_model(single, single.body["model"])
        delete_model(model, single.flag("force"))
        return {"deleted": True, "url": model.uri}

    return each(call, one, field="model")
