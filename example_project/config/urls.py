from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from saas import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/search/", views.api_search, name="api-search"),
    path("accounts/login/", LoginView.as_view(template_name="saas/login.html"), name="login"),
    path("account/usage/", views.account_usage, name="account-usage"),
    # The JSON usage view: /billing/usage/<metric>/ for the signed-in user's workspace.
    path("billing/", include("billflow_usage.urls")),
]
