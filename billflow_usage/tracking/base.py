"""What every tracker shares: the change it reacts to and its declaration."""

from __future__ import annotations

import abc
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from django.apps import apps
from django.db import models, router

from billflow_usage.models import Metric
from billflow_usage.tracking.metric_cache import tracked_metric
from billflow_usage.tracking.resolvers import Resolver

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
ACTIONS = (CREATE, UPDATE, DELETE)


def new_serial() -> str:
    """A change's serial: random, so no two changes share one."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Change:
    """One save or delete of a tracked object, as every tracker of its model sees it."""

    instance: models.Model
    action: str
    #: The database the host wrote to.
    using: str
    #: When the change was seen; one value for all trackers of a save.
    moment: datetime
    #: Field values (by attname) before this change, as far as they are known.
    loaded: Mapping[str, Any] = field(default_factory=dict)
    #: ``save(update_fields=...)``: only these fields were written.
    update_fields: frozenset[str] | None = None
    #: Drawn once per change: tracker identifiers hash it, so the same change seen twice maps
    #: to one identifier while two changes never share one, even in the same microsecond
    #: (a frozen clock in a host's tests, a coarse one).
    serial: str = field(default_factory=lambda: new_serial())

    @property
    def created(self) -> bool:
        return self.action == CREATE


def model_label(model: object) -> str | None:
    """``app_label.modelname`` of a model class or model string; None for anything else."""
    if isinstance(model, type) and issubclass(model, models.Model):
        return model._meta.label_lower
    if isinstance(model, str):
        return model.lower()
    return None


def resolve_model(model: object) -> type[models.Model] | None:
    """The concrete model class a tracker names, or None if it names none (checks say so)."""
    if isinstance(model, str):
        try:
            model = apps.get_model(model)
        except (LookupError, ValueError):
            return None
    if isinstance(model, type) and issubclass(model, models.Model) and not model._meta.abstract:
        return model
    return None


class Tracker(abc.ABC):
    """A declaration that turns saves and deletes of one model into billing for one metric."""

    kind: ClassVar[Metric.Kind]
    #: Where the tracker writes, which decides the database it guards (see ``guarded``).
    ledger_model: ClassVar[type[models.Model]]
    #: The public function that declares this kind of tracker (for messages).
    declared_with: ClassVar[str]

    def __init__(self, model: object, *, metric: str, customer: object) -> None:
        self.declared_model = model
        #: The model class, once the registry has resolved and connected it.
        self.model: type[models.Model] | None = None
        self.metric = metric
        self.customer = Resolver(customer)
        #: Its place among the trackers of the same model and metric, in declaration order,
        #: so several trackers of one metric record distinct events (set by the registry).
        self.slot = 0

    def __repr__(self) -> str:
        return f"{self.declared_with}({self.label}, metric={self.metric!r})"

    @property
    def label(self) -> str:
        return self.model._meta.label if self.model else repr(self.declared_model)

    @property
    def db(self) -> str:
        return router.db_for_write(self.ledger_model)

    def get_metric(self) -> Metric | None:
        """The tracker's metric, or None when it is inactive (nothing is recorded then)."""
        return tracked_metric(self.metric, kind=self.kind, using=self.db)

    def resolvers(self) -> dict[str, Resolver]:
        """The functions the tracker calls, by argument name (for the system checks)."""
        return {"customer": self.customer}

    @property
    def needs_delete(self) -> bool:
        """Whether the tracker reacts to deletes (post_delete also costs Django fast deletes)."""
        return False

    @property
    def needs_snapshots(self) -> bool:
        """Whether the tracker compares an object with its loaded values."""
        return False

    @property
    def preload_attnames(self) -> Collection[str]:
        """Fields whose old value must be known before a save overwrites it."""
        return ()

    @abc.abstractmethod
    def handle(self, change: Change) -> None:
        """React to one change; never raises (failures are logged and kept)."""
