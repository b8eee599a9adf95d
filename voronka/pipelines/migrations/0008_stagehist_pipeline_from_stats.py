"""PostgreSQL only: statistics on (pipeline, from_stage) of the stage history, so the planner knows that moves into a
pipeline from another pipeline's stage are rare (a handful of pairs; without them it multiplied the two columns'
frequencies, expected tens of thousands of rows and read the pipeline's whole history instead of
``stagehist_pipe_from_idx``). SQLite needs nothing."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE STATISTICS IF NOT EXISTS stagehist_pipe_from_stats (mcv) "
                          "ON pipeline_id, from_stage_id FROM pipelines_stagehistory")
    schema_editor.execute("ANALYZE pipelines_stagehistory")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS stagehist_pipe_from_stats")


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0007_stagehist_pipeline_from_index")]

    operations = [migrations.RunPython(create, drop)]
