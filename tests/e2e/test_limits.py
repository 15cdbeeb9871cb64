"""The example project's customer-facing usage, end to end over HTTP: the limited API
endpoint answering 429 at the plan's limit, and the account page's {% usage_meter %}.

No browser is needed (plain HTTP with a session cookie), but the example runs as in the
browser test: ``make demo``, then ``runserver`` and ``billflow_worker`` in their processes.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.example_site import ExampleSite, manage, running_example

pytestmark = [pytest.mark.wall_clock, pytest.mark.slow]

EMAIL = "billing@acme.test"  # the demo's Acme workspace
PASSWORD = "e2e-acme-password"

SETUP = f"""
from django.contrib.auth.models import User
import billflow_usage
from billflow_usage.models import UsageLimit
from saas.models import Workspace
User.objects.create_user("acme", "{EMAIL}", "{PASSWORD}")
acme = Workspace.objects.get(email="{EMAIL}")
used = billflow_usage.current_usage("api-calls", acme)
UsageLimit.objects.create(
    metric_id=UsageLimit._meta.get_field("metric").related_model.objects.get(key="api-calls").pk,
    customer_id=billflow_usage.check_limit("api-calls", acme).customer_id,
    limit=used + 1,
)
print(used)
"""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


class Browser:
    """urllib with a cookie jar: signs in through the example's login form."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> Answer:
        return self._open(urllib.request.Request(self.base + path))

    def sign_in(self, username: str, password: str) -> None:
        form = self.get("/accounts/login/").body
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert token, form
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
        ).encode()
        request = urllib.request.Request(
            self.base + "/accounts/login/?next=/account/usage/",
            data=data,
            headers={"Referer": self.base + "/accounts/login/"},
        )
        assert self._open(request).status == 200

    def _open(self, request: urllib.request.Request) -> Answer:
        try:
            with self.opener.open(request, timeout=30) as response:
                return Answer(response.status, dict(response.headers), response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read().decode())


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ExampleSite, int]]:
    with running_example(tmp_path_factory.mktemp("example_limits")) as site:
        used = int(manage(site.env, "shell", "-c", SETUP).strip().splitlines()[-1])
        yield site, used


def test_the_limited_endpoint_serves_the_last_call_then_answers_429(example) -> None:
    site, used = example
    browser = Browser(site.url)
    assert browser.get("/api/v1/search/").status == 401  # no workspace: nothing counted
    browser.sign_in("acme", PASSWORD)

    served = browser.get("/api/v1/search/?q=x")
    assert served.status == 200, served.body
    assert served.headers["RateLimit-Limit"] == str(used + 1)
    assert served.headers["RateLimit-Remaining"] == "0"

    refused = browser.get("/api/v1/search/?q=x")
    assert refused.status == 429
    body = json.loads(refused.body)
    assert (body["metric"], body["limit"], body["used"]) == ("api-calls", used + 1, used + 1)
    assert int(refused.headers["RateLimit-Reset"]) > 0

    meter = browser.get("/account/usage/")
    assert meter.status == 200
    assert f'max="{used + 1}" value="{used + 1}"' in meter.body
    assert f"{used + 1} of {used + 1} used, 0 left" in meter.body

    figures = json.loads(browser.get("/billing/usage/api-calls/").body)
    assert (figures["used"], figures["remaining"]) == (used + 1, 0)
    assert sum(day["value"] for day in figures["daily"]) == used + 1
