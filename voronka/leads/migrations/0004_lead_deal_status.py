from django.db import migrations, models
from django.db.models import Case, Exists, OuterRef, Value, When


def fill_deal_status(apps, schema_editor):
    """What became of each lead's deals (0 none, 1 a live deal, 2 a live won deal), in one UPDATE. Where leads were
    never written the reports' conversion rows are complete (marker ``pipeline_id`` -2); elsewhere the lead
    conversion report counts the records until ``voronka analytics-rebuild``."""
    lead = apps.get_model("leads", "Lead")
    deal = apps.get_model("deals", "Deal")
    live = deal.objects.filter(lead_id=OuterRef("pk"), deleted_at__isnull=True)
    lead.objects.update(deal_status=Case(When(Exists(live.filter(stage_semantics="success")), then=Value(2)),
                                         When(Exists(live), then=Value(1)), default=Value(0)))
    history = apps.get_model("pipelines", "StageHistory")
    state = apps.get_model("pipelines", "DailyTotalState")
    if not history.objects.filter(entity_type_id=1).exists():
        state.objects.get_or_create(entity_type_id=1, pipeline_id=-2, defaults={"signature": "conversion"})


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0003_list_indexes'),
        ('deals', '0004_list_indexes'),
        ('pipelines', '0003_daily_totals'),
    ]

    operations = [
        migrations.AddField(
            model_name='lead',
            name='deal_status',
            field=models.PositiveSmallIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(fill_deal_status, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='lead',
            index=models.Index(fields=['stage', 'stage_changed_at', 'id'], name='lead_stage_since_idx'),
        ),
    ]
