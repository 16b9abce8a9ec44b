"""Teams: listed to their members (staff see all); created and staffed by staff."""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from webapp.core import access
from webapp.core.errors import Conflict, InvalidInput
from webapp.core.models import Team

from . import serializers as s


class TeamMembersSerializer(serializers.Serializer):
    add = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list, max_length=1000
    )
    remove = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list, max_length=1000
    )


def _users(usernames: list[str]):
    users = list(get_user_model().objects.filter(username__in=usernames))
    missing = sorted(set(usernames) - {u.username for u in users})
    if missing:
        raise InvalidInput(f"unknown user(s): {', '.join(missing)}", field="members")
    return users


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.TeamSerializer
    # Created and staffed by staff (their own credentials, not a worker or task key).
    verbs = {
        "list": "team.read",
        "retrieve": "team.read",
        "create": "team.manage",
        "members": "team.manage",
    }

    def get_queryset(self):
        return access.visible_teams(self.request.user, self.request.auth).prefetch_related(
            "members"
        )

    @extend_schema(request=s.TeamCreateSerializer, responses=s.TeamSerializer)
    def create(self, request):
        data = s.TeamCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        name = data.validated_data["name"].strip()
        if not name:
            raise InvalidInput("team name must not be empty", field="name")
        members = _users(data.validated_data["members"])
        try:
            with transaction.atomic():
                team = Team.objects.create(name=name)
                team.members.set(members)
        except IntegrityError as error:
            raise Conflict(f"a team named {name!r} exists") from error
        return Response(s.TeamSerializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamMembersSerializer, responses=s.TeamSerializer)
    @action(detail=True, methods=["post"])
    def members(self, request, pk=None):
        team = self.get_object()
        data = TeamMembersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team.members.add(*_users(data.validated_data["add"]))
        team.members.remove(*_users(data.validated_data["remove"]))
        return Response(s.TeamSerializer(team).data)
