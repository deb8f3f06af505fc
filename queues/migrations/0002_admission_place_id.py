"""Admissions are keyed by the queue place's id (unique forever) instead of its ticket (a store that forgot
hands tickets out again). Rows written before get an id of their own, matching no place."""

import uuid

from django.db import migrations, models

import queues.store.base


def give_each_row_an_id(apps, schema_editor):
    Admission = apps.get_model("queues", "Admission")
    for row in Admission.objects.filter(place_id="").only("pk").iterator():
        Admission.objects.filter(pk=row.pk).update(place_id=uuid.uuid4().hex)


class Migration(migrations.Migration):

    dependencies = [
        ("queues", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="admission",
            name="place_id",
            field=models.CharField(default="", help_text="The queue place this admission ends (unique forever).",
                                   max_length=32),
            preserve_default=False,
        ),
        migrations.RunPython(give_each_row_an_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="admission",
            name="place_id",
            field=models.CharField(default=queues.store.base.new_place_id,
                                   help_text="The queue place this admission ends (unique forever).", max_length=32),
        ),
        migrations.RemoveConstraint(model_name="admission", name="one_admission_per_ticket"),
        migrations.AddConstraint(
            model_name="admission",
            constraint=models.UniqueConstraint(fields=("event", "place_id"), name="one_admission_per_place"),
        ),
    ]
