"""The name index's walk index covers every column a walk reads (kind, key, newest first, then the type, the name
words and the company key): a walk of duplicate search is one range of this index, no table row is read (an
index-only scan on PostgreSQL). It replaces ``namekey_newest_idx`` (its first three columns)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("intake", "0006_mailbox_password_encrypted"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="namekey",
            name="namekey_newest_idx",
        ),
        migrations.AddIndex(
            model_name="namekey",
            index=models.Index(fields=["kind", "key", "-entity_id", "entity_type_id", "words", "company"],
                               name="namekey_walk_idx"),
        ),
    ]
