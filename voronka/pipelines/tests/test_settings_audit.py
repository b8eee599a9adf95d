"""Settings changes (pipelines, stages, custom fields) go to the audit log, not to a record timeline."""

from __future__ import annotations

from voronka.core.models import AuditEvent, TimelineEntry
from voronka.customfields.actions import define_field, delete_field, update_field
from voronka.pipelines.actions import (
    create_pipeline,
    create_stage,
    delete_pipeline,
    delete_stage,
    reorder_stages,
    update_pipeline,
    update_stage,
)


def test_pipeline_stage_and_field_changes_are_audited(admin, deal_pipelines):
    before = TimelineEntry.objects.count()
    mark = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    pipeline = create_pipeline(admin, entity_type_id=2, name="Опт", code="wholesale",
                               stages=[{"name": "Новая", "code": "new"}, {"name": "Счёт", "code": "invoice"}])
    update_pipeline(admin, pipeline.pk, name="Оптовые продажи")
    stage = create_stage(admin, pipeline.pk, name="Отгрузка", code="ship")
    update_stage(admin, stage.pk, name="Отгрузка со склада")
    ids = list(pipeline.stages.order_by("-sort").values_list("id", flat=True))
    reorder_stages(admin, pipeline.pk, ids)
    delete_stage(admin, stage.pk)
    field = define_field(admin, entity_type_id=2, code="uf_region", label="Регион", kind="string")
    update_field(admin, field.pk, label="Регион доставки")
    delete_field(admin, field.pk)
    delete_pipeline(admin, pipeline.pk)
    actions = list(AuditEvent.objects.filter(id__gt=mark).order_by("id").values_list("action", flat=True))
    assert actions == ["pipeline.created", "pipeline.changed", "stage.created", "stage.changed", "stage.reordered",
                       "stage.deleted", "field.created", "field.changed", "field.deleted", "pipeline.deleted"]
    changed = AuditEvent.objects.get(action="stage.changed")
    assert changed.actor_user_id == admin.user_id
    assert changed.details["changes"] == {"name": ["Отгрузка", "Отгрузка со склада"]}
    assert TimelineEntry.objects.count() == before  # no timeline entries for settings
