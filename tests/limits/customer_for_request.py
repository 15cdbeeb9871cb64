"""The test suite's CUSTOMER_FOR_REQUEST: the signed-in user's workspace, if any."""

from tests.testapp.models import Workspace


def workspace_of(request):
    if not request.user.is_authenticated:
        return None
    return Workspace.objects.filter(email=request.user.email).first()
