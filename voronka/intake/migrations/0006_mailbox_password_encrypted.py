"""IMAP mailbox passwords are stored encrypted (``intake.secretbox``): the column becomes text (a token is
longer than the password) and the passwords stored in plain text so far are encrypted."""

from django.db import migrations, models


def encrypt(apps, schema_editor):
    from voronka.intake import secretbox

    Mailbox = apps.get_model("intake", "Mailbox")
    for box in Mailbox.objects.exclude(imap_password=""):
        if not secretbox.is_sealed(box.imap_password):
            Mailbox.objects.filter(pk=box.pk).update(imap_password=secretbox.seal(box.imap_password))


def decrypt(apps, schema_editor):
    from voronka.intake import secretbox

    Mailbox = apps.get_model("intake", "Mailbox")
    for box in Mailbox.objects.exclude(imap_password=""):
        if secretbox.is_sealed(box.imap_password):
            Mailbox.objects.filter(pk=box.pk).update(imap_password=secretbox.reveal(box.imap_password)[:255])


class Migration(migrations.Migration):

    dependencies = [
        ("intake", "0005_namekey_pairs"),
    ]

    operations = [
        migrations.AlterField(
            model_name="mailbox",
            name="imap_password",
            field=models.TextField(blank=True, verbose_name="password"),
        ),
        migrations.RunPython(encrypt, decrypt),
    ]
