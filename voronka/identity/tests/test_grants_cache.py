"""Grants are cached per process behind the database's rights version: one query per request, and a change
made by another process (a bumped version row) is seen by the next request."""

from __future__ import annotations

import pytest

from voronka.core import config_cache
from voronka.identity import permissions
from voronka.identity.models import Role, RoleAssignment, Scope, User

pytestmark = pytest.mark.django_db


def _fresh(user):
    return User.objects.get(pk=user.pk)  # a new request loads a new user object


def test_one_query_per_request_once_cached(manager_user, django_assert_num_queries):
    permissions.grants_for(_fresh(manager_user))
    user = _fresh(manager_user)
    with django_assert_num_queries(1):  # the rights version only
        grants = permissions.grants_for(user)
    with django_assert_num_queries(0):  # the same request again
        assert permissions.grants_for(user) is grants


def test_a_change_by_another_process_is_seen_by_the_next_request(manager_user):
    before = permissions.grants_for(_fresh(manager_user))
    assert before.scope(2, "read", None) == Scope.DEPARTMENT
    # another process gives the manager the head-of-sales role: it writes the rows and bumps the version row,
    # but cannot clear this process's memory
    RoleAssignment.objects.create(role=Role.objects.get(code="head_of_sales"), user=manager_user)
    assert permissions.grants_for(_fresh(manager_user)).scope(2, "read", None) == Scope.DEPARTMENT  # not told yet
    config_cache.bump(permissions.RIGHTS_KEY)
    assert permissions.grants_for(_fresh(manager_user)).scope(2, "read", None) == Scope.ALL


def test_moving_the_user_to_another_department_is_never_served_from_the_cache(manager_user):
    from voronka.identity.models import Department

    permissions.grants_for(_fresh(manager_user))
    other = Department.objects.create(name="Склад")
    colleague = User.objects.create_user("keeper", "k@example.ru", "p", department=other)
    User.objects.filter(pk=manager_user.pk).update(department=other)  # without the action: no version bump
    grants = permissions.grants_for(_fresh(manager_user))
    assert colleague.pk in grants.department_users
