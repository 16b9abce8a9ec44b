"""A task's results as charts and as feeds of what is new (the dashboard follows a running
task with them): scalars as drawn buckets, and scalars, plots and debug samples stored
after a report batch `seq`. Each feed is one range of a (task, seq) index, so a refresh
reads the new rows only, however many the task has."""

from django.db.models import Max
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from webapp.core import access, scalar_rollup
from webapp.core.models import DebugSample, Plot, Scalar

from . import serializers as s

# Plots are whole figures: a refresh sends at most this many, the rest on the next one.
PLOTS_PER_REFRESH = 50
SAMPLES_PER_REFRESH = 200


class TaskResultsViewSet(viewsets.GenericViewSet):
    """Detail routes under tasks/{id}/ beside TaskViewSet's (the same lookup and access)."""

    verbs = {
        "scalar_charts": "task.read",
        "scalars_since": "task.read",
        "plots_since": "task.read",
        "samples_since": "task.read",
    }

    def get_queryset(self):
        return access.visible_tasks(self.request.user, self.request.auth)

    def _query(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(parameters=[s.ScalarChartsQuerySerializer], responses=None)
    @action(detail=True, methods=["get"], url_path="scalars/charts")
    def scalar_charts(self, request, pk=None):
        """Every series as its buckets' points (at most 4 per bucket, 1,024 buckets), the
        task's single values, and the `seq` to follow the charts from."""
        task = self.get_object()
        query = self._query(s.ScalarChartsQuerySerializer)
        # Read before the buckets: a point stored in between comes again from since/, and
        # the page keeps one point per iteration.
        seq = Scalar.objects.filter(task=task).aggregate(m=Max("seq"))["m"] or 0
        return Response(
            {
                "seq": seq,
                "started": task.started.isoformat() if task.started else None,
                "series": scalar_rollup.charts(task, query.get("title")),
                "single_values": scalar_rollup.single_values(task),
            }
        )

    @extend_schema(parameters=[s.SinceQuerySerializer], responses=None)
    @action(detail=True, methods=["get"], url_path="scalars/since")
    def scalars_since(self, request, pk=None):
        task = self.get_object()
        query = self._query(s.SinceQuerySerializer)
        return Response(scalar_rollup.points_since(task, query["seq"], query["limit"]))

    @extend_schema(parameters=[s.SinceQuerySerializer], responses=None)
    @action(detail=True, methods=["get"], url_path="plots/since")
    def plots_since(self, request, pk=None):
        task = self.get_object()
        query = self._query(s.SinceQuerySerializer)
        limit = min(query["limit"], PLOTS_PER_REFRESH)
        rows = list(
            Plot.objects.filter(task=task, seq__gt=query["seq"]).order_by("seq", "id")[: limit + 1]
        )
        more = len(rows) > limit
        rows = rows[:limit]
        # A cut inside one batch would skip its rest: the page asks again from the seq
        # before it. Whole batches only, unless one batch alone is over the limit.
        if more and rows[0].seq != rows[-1].seq:
            rows = [row for row in rows if row.seq != rows[-1].seq]
        return Response(
            {
                "seq": rows[-1].seq if rows else query["seq"],
                "more": more,
                "plots": [
                    {
                        "title": p.title,
                        "series": p.series,
                        "iteration": p.iteration,
                        "figure": p.figure,
                    }
                    for p in rows
                ],
            }
        )

    @extend_schema(parameters=[s.SinceQuerySerializer], responses=None)
    @action(detail=True, methods=["get"], url_path="samples/since")
    def samples_since(self, request, pk=None):
        task = self.get_object()
        query = self._query(s.SinceQuerySerializer)
        limit = min(query["limit"], SAMPLES_PER_REFRESH)
        rows = list(
            DebugSample.objects.filter(task=task, seq__gt=query["seq"]).order_by("seq", "id")[
                : limit + 1
            ]
        )
        more = len(rows) > limit
        rows = rows[:limit]
        if more and rows[0].seq != rows[-1].seq:
            rows = [row for row in rows if row.seq != rows[-1].seq]
        return Response(
            {
                "seq": rows[-1].seq if rows else query["seq"],
                "more": more,
                "samples": [
                    {
                        "id": row.id,
                        "title": row.title,
                        "series": row.series,
                        "iteration": row.iteration,
                        "url": f"/api/v1/samples/{row.id}/",
                    }
                    for row in rows
                ],
            }
        )
