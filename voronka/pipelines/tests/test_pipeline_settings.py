"""Renaming, making default and deleting pipelines (used by the Bitrix24 facade's crm.category.*)."""

from __future__ import annotations

import pytest

from voronka.core.errors import Conflict, PermissionDenied
from voronka.pipelines.actions import delete_pipeline, update_pipeline
from voronka.pipelines.models import Pipeline, Stage

pytestmark = pytest.mark.django_db


def test_update_and_default(admin, deal_pipelines):
    repeat = update_pipeline(admin, deal_pipelines["repeat"].pk, name="Повторные", is_default=True)
    assert repeat.name == "Повторные"
    assert list(Pipeline.objects.filter(entity_type_id=2, is_default=True)) == [repeat]


def test_delete_only_empty_non_default(admin, manager, deal_pipelines):
    from voronka.deals.actions import create_deal

    sales, repeat = deal_pipelines["sales"], deal_pipelines["repeat"]
    with pytest.raises(PermissionDenied):
        delete_pipeline(manager, repeat.pk)
    with pytest.raises(Conflict):
        delete_pipeline(admin, sales.pk)  # the default one
    create_deal(admin, title="x", pipeline=repeat.pk)
    with pytest.raises(Conflict):
        delete_pipeline(admin, repeat.pk)
    spare = Pipeline.objects.create(entity_type_id=2, name="Пустая", code="spare")
    Stage.objects.create(pipeline=spare, name="Новая", code="new")
    delete_pipeline(admin, spare.pk)
    assert not Pipeline.objects.filter(pk=spare.pk).exists() and not Stage.objects.filter(pipeline_id=spare.pk).exists()
