from django.db import migrations


def mark_empty_kinds_complete(apps, schema_editor):
    """Where leads or deals were never written the (empty) amount histograms and the histograms of time to first
    action and to qualification are complete (markers: pipeline_id -3 and -4 in ``DailyTotalState``); elsewhere
    «average and median deal amount», «time to first action and to qualification» and the managers' speed count the
    records until ``voronka analytics-rebuild`` has run."""
    history = apps.get_model("pipelines", "StageHistory")
    state = apps.get_model("pipelines", "DailyTotalState")
    for entity_type_id in (1, 2):
        if not history.objects.filter(entity_type_id=entity_type_id).exists():
            state.objects.get_or_create(entity_type_id=entity_type_id, pipeline_id=-3, defaults={"signature": "amounts"})
            state.objects.get_or_create(entity_type_id=entity_type_id, pipeline_id=-4, defaults={"signature": "fresh"})


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0004_stay_totals")]

    operations = [migrations.RunPython(mark_empty_kinds_complete, migrations.RunPython.noop)]
