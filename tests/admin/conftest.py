import pytest
from django.contrib.auth.models import Permission, User


def staff_with(*codenames: str) -> User:
    user = User.objects.create_user(
        f"staff-{'-'.join(codenames) or 'none'}", password="pw", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def viewer(db):
    return staff_with("view_usageevent", "view_subscriptionitemlink", "view_metric")


@pytest.fixture
def editor(db):
    return staff_with(
        "view_usageevent",
        "change_usageevent",
        "view_subscriptionitemlink",
        "change_subscriptionitemlink",
        "view_metric",
        "change_metric",
    )
