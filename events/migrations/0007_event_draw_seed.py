"""Every event gets its draw seed (issue 19): a new one for each existing event, then the field's default."""

import secrets

from django.db import migrations, models

import events.models


def seed_existing_events(apps, schema_editor):
    """One seed per event: AddField's default would be drawn once and shared by every row."""
    Event = apps.get_model("events", "Event")
    for event in Event.objects.filter(draw_seed="").only("pk"):
        Event.objects.filter(pk=event.pk).update(draw_seed=secrets.token_hex(32))


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0006_gate_entry_policies"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="draw_seed",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(seed_existing_events, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="event",
            name="draw_seed",
            field=models.CharField(default=events.models.new_draw_seed, editable=False, max_length=64),
        ),
    ]
