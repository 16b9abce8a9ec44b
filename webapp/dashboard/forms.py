"""What the dashboard's buttons accept, checked by DRF serializers as the API's bodies are."""

from rest_framework import serializers

MAX_TAGS = 100
MAX_TAG_LENGTH = 255
MAX_DESCRIPTION = 20_000


class TaskDetailsForm(serializers.Serializer):
    """Tags (comma-separated, as typed) and the description of a task."""

    tags = serializers.CharField(allow_blank=True, required=False, default="", max_length=30_000)
    comment = serializers.CharField(
        allow_blank=True,
        required=False,
        default="",
        max_length=MAX_DESCRIPTION,
        trim_whitespace=False,
    )

    def validate_tags(self, value: str) -> list[str]:
        tags: list[str] = []
        for raw in value.split(","):
            tag = raw.strip()
            if not tag or tag in tags:
                continue
            if len(tag) > MAX_TAG_LENGTH:
                raise serializers.ValidationError(f"a tag is at most {MAX_TAG_LENGTH} characters")
            tags.append(tag)
        if len(tags) > MAX_TAGS:
            raise serializers.ValidationError(f"a task has at most {MAX_TAGS} tags")
        return tags

    def validate_comment(self, value: str) -> str:
        return value.replace("\r\n", "\n").strip()


def first_error(form: serializers.Serializer) -> str:
    """The first message of an invalid form, as one line for the page."""
    for field, errors in form.errors.items():
        message = errors[0] if isinstance(errors, list) and errors else errors
        return f"{field}: {message}"
    return "invalid input"


class ConsoleLinesQuery(serializers.Serializer):
    """Lines after `since` (the tail, followed live) or, with `before`, the lines just
    before that seq (the "earlier lines" button)."""

    since = serializers.IntegerField(min_value=-1, default=-1)
    before = serializers.IntegerField(min_value=0, required=False)


class ConsoleSearchQuery(serializers.Serializer):
    q = serializers.CharField(min_length=1, max_length=200, trim_whitespace=False)


MAX_COMPARED = 10
COMPARE_VIEWS = ("parameters", "scalars", "plots", "samples")


class CompareQuery(serializers.Serializer):
    """/compare/?ids=a,b&ids=c&view=scalars: up to MAX_COMPARED task ids, in order."""

    ids = serializers.ListField(
        child=serializers.CharField(max_length=400), min_length=1, max_length=MAX_COMPARED
    )
    view = serializers.ChoiceField(choices=COMPARE_VIEWS, default="parameters")
    diff = serializers.BooleanField(default=False)

    def validate_ids(self, values: list[str]) -> list[str]:
        ids: list[str] = []
        for value in values:
            for task_id in value.split(","):
                task_id = task_id.strip().lower()
                if not task_id or task_id in ids:
                    continue
                if len(task_id) != 32 or any(c not in "0123456789abcdef" for c in task_id):
                    raise serializers.ValidationError(f"{task_id[:40]!r} is not a task id")
                ids.append(task_id)
        if not 1 <= len(ids) <= MAX_COMPARED:
            raise serializers.ValidationError(f"compare 1 to {MAX_COMPARED} tasks")
        return ids
