"""Two new choices for ledger events: the action ``rectify`` (art. 16) and the source
``retention`` (the scheduled retention run). Choices live only in Django's model state, so this
migration runs no SQL: the append-only triggers, the rows and the hash chain are untouched (the
chain hashes the stored strings, and ``comms/suppression/chain.py`` is unchanged)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('suppression', '0003_checkpoint_append_only'),
    ]

    operations = [
        migrations.AlterField(
            model_name='consentevent',
            name='action',
            field=models.CharField(choices=[('grant', 'Grant'), ('withdraw', 'Withdraw'), ('object', 'Object (GDPR art. 21)'), ('confirm', 'Confirm (double opt-in)'), ('restrict', 'Restrict processing (art. 18)'), ('lift_restriction', 'Lift restriction'), ('suppress', 'Suppress address'), ('lift_suppression', 'Lift suppression'), ('erase', 'Erase personal data (art. 17)'), ('rectify', 'Rectify personal data (art. 16)')], max_length=20),
        ),
        migrations.AlterField(
            model_name='consentevent',
            name='source',
            field=models.CharField(choices=[('web_form', 'Web form'), ('front_desk', 'Front desk'), ('api', 'API'), ('import', 'Import'), ('admin', 'Admin'), ('unsubscribe_link', 'Unsubscribe link'), ('one_click', 'One-click unsubscribe'), ('preference_centre', 'Preference centre'), ('sms_keyword', 'SMS keyword'), ('mailchimp_webhook', 'Mailchimp webhook'), ('lifevision_webhook', 'LifeVision webhook'), ('rights_request', 'Rights request'), ('retention', 'Retention policy')], max_length=30),
        ),
    ]
