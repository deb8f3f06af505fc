"""Webhooks: endpoints, the outbox of deliveries, threshold sides and the expiry sweep's watermark."""

import django.db.models.deletion
import django.utils.timezone
import queues.models
import queues.webhooks.addresses
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0006_gate_entry_policies'),
        ('queues', '0002_admission_place_id'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='WebhookExpirySweep',
            fields=[
                ('event', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='events.event')),
                ('swept_until', models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name='WebhookEndpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('url', models.URLField(help_text='https://... (loopback and private addresses are refused unless listed in QMS_WEBHOOK_ALLOWED_HOSTS).', max_length=500, validators=[queues.webhooks.addresses.validate_receiver_url])),
                ('secret', models.CharField(help_text='Signs every delivery (HMAC-SHA256); the receiver holds it too.', max_length=200)),
                ('event_types', models.JSONField(blank=True, default=list, help_text='Event types to send (e.g. ["admission.issued"]); empty: all of them.')),
                ('all_events', models.BooleanField(default=True, help_text='Every event on sale; off: only the events chosen.')),
                ('active', models.BooleanField(default=True)),
                ('threshold_waiting', models.PositiveIntegerField(blank=True, help_text='queue.threshold: sent when the fans waiting reach this number, and again when they fall below it by the hysteresis.', null=True)),
                ('threshold_hysteresis', models.PositiveIntegerField(default=0, help_text="queue.threshold: how far below the number the waiting must fall before 'below' is sent (stops a queue hovering at the number from sending one alert per tick).")),
                ('description', models.CharField(blank=True, max_length=200)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='webhook_endpoints', to=settings.AUTH_USER_MODEL)),
                ('events', models.ManyToManyField(blank=True, related_name='webhook_endpoints', to='events.event')),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event_type', models.CharField(choices=[('admission.issued', 'A fan was admitted (token issued)'), ('admission.redeemed', 'The reservation service redeemed a token'), ('admission.released', "The reservation service released a token's slot"), ('admission.expired', 'A token expired before it was released'), ('queue.opened', 'The sale opened'), ('queue.paused', 'Admission paused'), ('queue.resumed', 'Admission resumed'), ('queue.drained', 'Draining: no new joins'), ('queue.undrained', 'Taking joins again'), ('queue.reset', 'The queue was emptied'), ('queue.threshold', "Waiting fans crossed the endpoint's threshold")], max_length=32)),
                ('webhook_id', models.CharField(help_text='X-QMS-Webhook-Id: the same on every retry.', max_length=64)),
                ('payload', models.JSONField(help_text="The body's `data`.")),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed (gave up)')], default='pending', max_length=16)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('retry_until', models.DateTimeField(default=queues.models.retry_deadline)),
                ('claimed_by', models.CharField(blank=True, max_length=32)),
                ('last_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('last_status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('event', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='webhook_deliveries', to='events.event')),
                ('endpoint', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='queues.webhookendpoint')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['status', 'next_attempt_at'], name='webhook_due_idx')],
                'constraints': [models.UniqueConstraint(fields=('endpoint', 'webhook_id'), name='one_delivery_per_endpoint_and_id')],
            },
        ),
        migrations.CreateModel(
            name='WebhookThresholdState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('above', models.BooleanField(default=False)),
                ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='threshold_states', to='queues.webhookendpoint')),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='events.event')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('endpoint', 'event'), name='one_threshold_state')],
            },
        ),
    ]
