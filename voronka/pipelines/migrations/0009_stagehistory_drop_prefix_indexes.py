"""Stage history: drop the single-column indexes of ``from_stage`` and ``to_stage``.

``stagehist_slowest_idx (from_stage_id, seconds_in_previous)`` and ``stagehist_stage_idx (to_stage_id, moved_at)``
begin with the same columns and serve every lookup the short ones served (and the PROTECT check when a stage is
deleted), so every stage move and every create wrote two B-trees for nothing. The indexes are dropped by name
(the names Django gave them, the same on SQLite and PostgreSQL) instead of an ``AlterField``, which SQLite would
run by copying the whole table.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = [
    ("pipelines_stagehistory_from_stage_id_da44a11b", "from_stage_id"),
    ("pipelines_stagehistory_to_stage_id_c7efae09", "to_stage_id"),
]


class Migration(migrations.Migration):

    dependencies = [
        ("pipelines", "0008_stagehist_pipeline_from_stats"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="stagehistory",
                    name="from_stage",
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                            to="pipelines.stage"),
                ),
                migrations.AlterField(
                    model_name="stagehistory",
                    name="to_stage",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="+", to="pipelines.stage"),
                ),
            ],
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{name}"',
                                  reverse_sql=f'CREATE INDEX "{name}" ON "pipelines_stagehistory" ("{column}")')
                for name, column in INDEXES
            ],
        ),
    ]
