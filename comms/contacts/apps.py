from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "comms.contacts"
    label = "contacts"
    verbose_name = "Contacts"
