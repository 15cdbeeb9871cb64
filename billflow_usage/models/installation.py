from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

#: The primary key of the one row.
ONLY_ROW = 1


def new_namespace() -> str:
    """128 random bits: two installations never draw the same."""
    return secrets.token_hex(16)


class Installation(models.Model):
    """This database's identity: one row, created by ``migrate``.

    Its ``namespace`` is hashed into every identifier the library derives (trackers, delivery
    groups, ``billflow_sync`` corrections), so two databases sharing one Stripe account
    (staging and production on one test account, one database per tenant) never make the
    same identifier, and Stripe never drops one's usage as a duplicate of the other's. A copy
    of a database (staging restored from production) keeps the namespace; delete the row and
    run ``migrate`` to give the copy its own.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=ONLY_ROW, editable=False)
    namespace = models.CharField(max_length=64, default=new_namespace, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("installation")
        constraints = [
            models.CheckConstraint(condition=Q(id=ONLY_ROW), name="bfu_installation_one_row"),
            models.CheckConstraint(
                condition=~Q(namespace=""), name="bfu_installation_namespace_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"billflow_usage installation {self.namespace}"
