from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "comms.accounts"
    label = "accounts"
    verbose_name = "API keys"
