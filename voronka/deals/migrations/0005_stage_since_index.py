from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deals', '0004_list_indexes'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='deal',
            index=models.Index(fields=['stage', 'stage_changed_at', 'id'], name='deal_stage_since_idx'),
        ),
    ]
