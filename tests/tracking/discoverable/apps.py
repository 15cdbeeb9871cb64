from django.apps import AppConfig


class DiscoverableConfig(AppConfig):
    name = "tests.tracking.discoverable"
    label = "tracking_discoverable"
