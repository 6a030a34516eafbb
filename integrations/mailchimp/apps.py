from django.apps import AppConfig


class MailchimpConfig(AppConfig):
    name = "integrations.mailchimp"
    label = "mailchimp"
    verbose_name = "Mailchimp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from comms.suppression.services import ledger_listen
        from integrations.mailchimp.sync import ledger_event_recorded

        ledger_listen(ledger_event_recorded)
