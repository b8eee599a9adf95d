"""Shared fixtures: personas, an actor for each, and the demo-like pipelines most tests need."""

from __future__ import annotations

import pytest

from voronka.core.actor import Actor


@pytest.fixture(autouse=True)
def _fresh_rights_cache():
    """Each test starts with no grants cached in the process (ids are reused after a rolled-back test)."""
    from voronka.identity.permissions import forget_cached

    forget_cached()
    yield


@pytest.fixture
def admin_user(db):
    from voronka.identity.models import User

    return User.objects.create_superuser("admin", "admin@example.ru", "admin-pass", first_name="Анна", last_name="Админова")


@pytest.fixture
def manager_user(db):
    from voronka.identity.models import Department, Role, RoleAssignment, User
    from voronka.identity.permissions import rights_changed

    dept = Department.objects.create(name="Отдел продаж")
    user = User.objects.create_user("manager", "m@example.ru", "manager-pass", first_name="Пётр", last_name="Менеджеров",
                                    department=dept)
    RoleAssignment.objects.create(role=Role.objects.get(code="sales_manager"), user=user)
    rights_changed()
    return user


@pytest.fixture
def admin(admin_user) -> Actor:
    return Actor.for_user(admin_user, "test")


@pytest.fixture
def manager(manager_user) -> Actor:
    return Actor.for_user(manager_user, "test")


@pytest.fixture
def system() -> Actor:
    return Actor.system("test")


@pytest.fixture
def lead_pipeline(admin):
    from voronka.pipelines.actions import create_pipeline

    return create_pipeline(admin, entity_type_id=1, name="Лиды", code="leads", stages=[
        {"name": "Не обработан", "code": "new"},
        {"name": "Назначен менеджер", "code": "assigned"},
        {"name": "Квалифицирован", "code": "qualified", "required_fields": ["phones"]},
        {"name": "Сконвертирован", "code": "converted", "semantics": "success"},
        {"name": "Некачественный", "code": "junk", "semantics": "failure"},
        {"name": "Отказ", "code": "refused", "semantics": "failure"},
    ])


@pytest.fixture
def deal_pipelines(admin):
    from voronka.pipelines.actions import create_pipeline

    sales = create_pipeline(admin, entity_type_id=2, name="Продажи", code="sales", stages=[
        {"name": "Новая", "code": "new"},
        {"name": "Счёт выставлен", "code": "invoice", "required_fields": ["opportunity"]},
        {"name": "Оплачена", "code": "won", "semantics": "success"},
        {"name": "Проиграна", "code": "lost", "semantics": "failure"},
    ])
    repeat = create_pipeline(admin, entity_type_id=2, name="Повторные продажи", code="repeat", stages=[
        {"name": "Предложение", "code": "offer"},
        {"name": "Оплачена", "code": "won", "semantics": "success"},
        {"name": "Отказ", "code": "lost", "semantics": "failure"},
    ])
    return {"sales": sales, "repeat": repeat}
