"""The name index keys pairs of a person's name words (cut to their first letters) instead of single words,
and the same pairs at the person's company; every row carries the record's name words and company key, so
candidates are scored without a second query.

Existing rows are converted from themselves (a record's word rows, in the order they were written, are its
name words): no record of another app is read."""

from itertools import combinations

from django.db import migrations, models

PREFIX = 3
COMPANY = 4  # the entity type id of companies
RECORD_WORDS = 4
BATCH = 5000


def pair_keys(words):
    cut = [w[:PREFIX] for w in words[:RECORD_WORDS]]
    if len(cut) == 1:
        return cut
    return sorted({" ".join(sorted(pair)) for pair in combinations(cut, 2)})


def convert(apps, schema_editor):
    NameKey = apps.get_model("intake", "NameKey")
    top = NameKey.objects.order_by("-id").values_list("id", flat=True).first() or 0
    old = NameKey.objects.filter(id__lte=top)  # rows written from here on are already converted
    last = 0
    while True:
        batch = list(old.filter(id__gt=last).order_by("id").values_list("id", "entity_type_id", "entity_id")[:BATCH])
        if not batch:
            break
        last = batch[-1][0]
        by_type = {}
        for _, t, pk in batch:
            by_type.setdefault(t, set()).add(pk)
        for t, ids in by_type.items():
            found = {}  # every old row of these records at once: a record is converted whole, once
            for row_id, pk, kind, key in old.filter(entity_type_id=t, entity_id__in=ids).order_by("id") \
                    .values_list("id", "entity_id", "kind", "key"):
                entry = found.setdefault(pk, {"words": [], "company": "", "ids": []})
                entry["ids"].append(row_id)
                if kind == "c":
                    entry["company"] = key
                else:
                    entry["words"].append(key)
            new = []
            for pk, entry in found.items():
                name, company = " ".join(entry["words"])[:300], entry["company"]
                if t == COMPANY:
                    keys = [("c", company)] if company else []
                else:
                    pairs = pair_keys(entry["words"]) if entry["words"] else []
                    full = [("f", " ".join(sorted(entry["words"][:RECORD_WORDS]))[:100])] \
                        if len(entry["words"]) > 1 else []
                    keys = full + [("p", k) for k in pairs] + [("q", f"{k}|{company}"[:100]) for k in pairs if company]
                new += [NameKey(entity_type_id=t, entity_id=pk, kind=kind, key=key, words=name, company=company)
                        for kind, key in keys]
            NameKey.objects.filter(id__in=[i for e in found.values() for i in e["ids"]]).delete()
            NameKey.objects.bulk_create(new, batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("intake", "0004_namekey_newest"),
    ]

    operations = [
        migrations.AddField(
            model_name="namekey",
            name="words",
            field=models.CharField(blank=True, default="", max_length=300),
        ),
        migrations.AddField(
            model_name="namekey",
            name="company",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AlterField(
            model_name="namekey",
            name="kind",
            field=models.CharField(choices=[("f", "Whole name"), ("p", "Name words"), ("q", "Name words at a company"),
                                            ("c", "Company")], max_length=1),
        ),
        migrations.RunPython(convert, migrations.RunPython.noop),
    ]
