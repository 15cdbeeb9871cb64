"""The tracker registry: ``track()``, ``track_quantity()``, ``untrack()`` and the receivers.

Shaped like django-auditlog's: one class, one module-level instance (:data:`registry`) behind
the public API, and fresh instances in tests. Receivers are connected once per model and
signal, not per tracker, so the trackers of a model run in declaration order and share one
:class:`~billflow_usage.tracking.base.Change` per save. Each connection has a dispatch_uid
computed from the registry, the signal and the model (so ``untrack()`` disconnects exactly
it), and ``weak=False``: the receivers are bound methods that would otherwise be collected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, Unpack, overload

from django.apps import apps
from django.db import models
from django.db.models.signals import ModelSignal, post_delete, post_init, post_save, pre_save
from django.utils import timezone

from billflow_usage.tracking.base import (
    CREATE,
    DELETE,
    UPDATE,
    Change,
    Tracker,
    model_label,
    resolve_model,
)
from billflow_usage.tracking.context import tracking_is_disabled
from billflow_usage.tracking.metered import MeteredTracker, record_created
from billflow_usage.tracking.options import (
    TRACK,
    TRACK_QUANTITY,
    TrackOptions,
    TrackQuantityOptions,
)
from billflow_usage.tracking.seats import QuantityTracker
from billflow_usage.tracking.snapshots import before_save, loaded, take, watch

M = TypeVar("M", bound=type[models.Model])
T = TypeVar("T", bound=Tracker)


class TrackerRegistry:
    """The trackers of a project, by model, and the signal receivers that run them."""

    def __init__(self) -> None:
        self._trackers: list[Tracker] = []
        self._by_model: dict[type[models.Model], list[Tracker]] = {}

    @overload
    def track(self, model: None = None, **options: Unpack[TrackOptions]) -> Callable[[M], M]: ...

    @overload
    def track(
        self, model: type[models.Model] | str, **options: Unpack[TrackOptions]
    ) -> MeteredTracker: ...

    def track(
        self, model: type[models.Model] | str | None = None, **options: Unpack[TrackOptions]
    ) -> MeteredTracker | Callable[[M], M]:
        """Record usage of the metered ``metric`` when objects of ``model`` change.

        ``model`` is a model class or ``"app_label.ModelName"``; leave it out to use
        ``track`` as a class decorator. Returns the tracker (the class, as a decorator).
        The options (:class:`~billflow_usage.tracking.options.TrackOptions`):

        - ``customer(instance)``: a ``cus_...`` ID, a dj-stripe ``Customer``, a dj-stripe
          subscriber, or None to record nothing for this object.
        - ``value``: a whole number (default 1), or ``value(instance)`` returning one (None
          skips).
        - ``on``: any of ``"create"``, ``"update"``, ``"delete"`` (default ``("create",)``).
        - ``when(instance, created)``: record only when it returns true.
        - ``timestamp(instance)``: when the usage happened (default: when it was saved).
        - ``identifier(instance)``: the object's own idempotency key, used as it is for the
          creation's identifier (so it can't start with the library's prefixes ``bfu_``,
          ``bft_`` or ``bfug_``) and instead of the pk in the others'.
        - ``delta="field"``: record how much a numeric field changed instead of ``value``:
          its value on create, new minus old on update (nothing when unchanged), minus its
          value on delete.
        - ``reverse_on_delete``: deleting the object undoes what it billed for the metric
          (cancels what is still unsent, offsets the rest with a negative event on a sum
          meter; on count and last meters the rest stays billed, with a warning) instead
          of recording a delete.

        Any argument taking a function also takes its dotted path. A missing or unknown
        option is a ``TypeError``; other mistakes are reported by ``manage.py check``
        (``billflow_usage.E1xx``); a save whose tracker fails still succeeds, and the
        failure is kept as a failed ledger row.
        """
        TRACK.require(options)
        return self._declare(model, lambda target: MeteredTracker(target, **options))

    @overload
    def track_quantity(
        self, model: None = None, **options: Unpack[TrackQuantityOptions]
    ) -> Callable[[M], M]: ...

    @overload
    def track_quantity(
        self, model: type[models.Model] | str, **options: Unpack[TrackQuantityOptions]
    ) -> QuantityTracker: ...

    def track_quantity(
        self,
        model: type[models.Model] | str | None = None,
        **options: Unpack[TrackQuantityOptions],
    ) -> QuantityTracker | Callable[[M], M]:
        """Keep the seat count of the licensed ``metric`` in step with ``model``.

        After any save or delete of an object, once the transaction has committed,
        ``quantity(customer_id)`` is recomputed for the object's ``customer(instance)`` and
        stored with ``set_quantity()``: once per customer and metric per transaction (the
        options: :class:`~billflow_usage.tracking.options.TrackQuantityOptions`).
        """
        TRACK_QUANTITY.require(options)
        return self._declare(model, lambda target: QuantityTracker(target, **options))

    def register(self, tracker: T) -> T:
        """Add a tracker and connect its model's receivers (model strings: once apps are ready)."""
        self._trackers.append(tracker)
        if not isinstance(tracker.declared_model, str) or apps.models_ready:
            self._attach(tracker)
        return tracker

    def connect_pending(self) -> None:
        """Connect the trackers declared with a model string before the models were loaded."""
        for tracker in self._trackers:
            if tracker.model is None:
                self._attach(tracker)

    def untrack(
        self, target: Tracker | type[models.Model] | str, *, metric: str | None = None
    ) -> list[Tracker]:
        """Remove one tracker, or all of a model's (of one metric); returns those removed."""
        if isinstance(target, Tracker):
            removed = [tracker for tracker in self._trackers if tracker is target]
        else:
            removed = self.get_trackers(target, metric=metric)
        for tracker in removed:
            self._trackers.remove(tracker)
            if tracker.model is not None:
                self._by_model[tracker.model].remove(tracker)
                self._connect(tracker.model)
        return removed

    def clear(self) -> None:
        """Remove every tracker and disconnect every receiver."""
        for tracker in list(self._trackers):
            self.untrack(tracker)

    def contains(self, model: type[models.Model] | str, *, metric: str | None = None) -> bool:
        return bool(self.get_trackers(model, metric=metric))

    def get_trackers(
        self, model: type[models.Model] | str | None = None, *, metric: str | None = None
    ) -> list[Tracker]:
        """Trackers in declaration order, optionally of one model and/or one metric."""
        label = None if model is None else model_label(model)
        return [
            tracker
            for tracker in self._trackers
            if (label is None or model_label(tracker.model or tracker.declared_model) == label)
            and (metric is None or tracker.metric == metric)
        ]

    def get_models(self) -> list[type[models.Model]]:
        """The models that have connected trackers."""
        return list(self._by_model)

    def quantity_tracker(self, metric: str) -> QuantityTracker | None:
        """The connected seat tracker that recomputes ``metric``, if any."""
        for tracker in self._trackers:
            if isinstance(tracker, QuantityTracker) and tracker.metric == metric and tracker.model:
                return tracker
        return None

    def record_bulk_created(
        self, model: type[models.Model], objs: Iterable[models.Model], using: str
    ) -> None:
        """Do for freshly bulk-created ``objs`` what ``post_save`` does for one creation."""
        trackers = tuple(self._by_model.get(model, ()))
        objs = list(objs)
        if not tracking_is_disabled():
            moment = timezone.now()
            changes = [Change(obj, CREATE, using, moment) for obj in objs]
            record_created([t for t in trackers if isinstance(t, MeteredTracker)], changes)
            for tracker in trackers:
                if not isinstance(tracker, MeteredTracker):
                    for change in changes:
                        tracker.handle(change)
        if any(tracker.needs_snapshots for tracker in trackers):
            for obj in objs:
                take(obj)

    def _declare(self, model: object, build: Callable[[object], T]) -> T | Callable[[M], M]:
        if model is not None:
            return self.register(build(model))

        def decorator(cls: M) -> M:
            self.register(build(cls))
            return cls

        return decorator

    def _attach(self, tracker: Tracker) -> None:
        model = resolve_model(tracker.declared_model)
        if model is None:
            return  # not a model: the system checks report it
        tracker.model = model
        siblings = self._by_model.setdefault(model, [])
        tracker.slot = sum(1 for t in siblings if t.metric == tracker.metric)
        siblings.append(tracker)
        self._connect(model)

    def _receivers(self) -> tuple[tuple[str, ModelSignal, Callable[..., None]], ...]:
        return (
            ("post_init", post_init, self._post_init),
            ("pre_save", pre_save, self._pre_save),
            ("post_save", post_save, self._post_save),
            ("post_delete", post_delete, self._post_delete),
        )

    def _dispatch_uid(self, signal_name: str, model: type[models.Model]) -> str:
        return f"billflow_usage.tracking:{id(self)}:{signal_name}:{model._meta.label_lower}"

    def _connect(self, model: type[models.Model]) -> None:
        """Connect exactly the receivers the model's trackers need, and disconnect the rest.

        ``post_delete`` is connected only when needed, since any receiver stops Django from
        fast-deleting the model in cascades.
        """
        trackers = self._by_model.get(model, [])
        if not trackers:
            self._by_model.pop(model, None)
        wanted = {
            "post_init": any(tracker.needs_snapshots for tracker in trackers),
            "pre_save": any(tracker.preload_attnames for tracker in trackers),
            "post_save": bool(trackers),
            "post_delete": any(tracker.needs_delete for tracker in trackers),
        }
        for name, signal, receiver in self._receivers():
            uid = self._dispatch_uid(name, model)
            if wanted[name]:
                signal.connect(receiver, sender=model, weak=False, dispatch_uid=uid)
            else:
                signal.disconnect(sender=model, dispatch_uid=uid)
        if wanted["post_init"]:
            watch(model)

    def _post_init(self, sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
        take(instance)

    def _pre_save(
        self,
        sender: type[models.Model],
        instance: models.Model,
        raw: bool = False,
        using: str = "default",
        **kwargs: Any,
    ) -> None:
        if raw or tracking_is_disabled():
            return
        attnames = {a for t in self._by_model.get(sender, ()) for a in t.preload_attnames}
        before_save(instance, attnames, using)

    def _post_save(
        self,
        sender: type[models.Model],
        instance: models.Model,
        created: bool = False,
        raw: bool = False,
        using: str = "default",
        update_fields: frozenset[str] | None = None,
        **kwargs: Any,
    ) -> None:
        trackers = tuple(self._by_model.get(sender, ()))
        if not raw and not tracking_is_disabled():
            action = CREATE if created else UPDATE
            change = Change(
                instance, action, using, timezone.now(), loaded(instance), update_fields
            )
            for tracker in trackers:
                tracker.handle(change)
        if any(tracker.needs_snapshots for tracker in trackers):
            take(instance, update_fields)

    def _post_delete(
        self,
        sender: type[models.Model],
        instance: models.Model,
        using: str = "default",
        **kwargs: Any,
    ) -> None:
        if tracking_is_disabled():
            return
        change = Change(instance, DELETE, using, timezone.now(), loaded(instance))
        for tracker in tuple(self._by_model.get(sender, ())):
            tracker.handle(change)


#: The project's trackers: ``billflow_usage.track()`` and friends declare into it.
registry = TrackerRegistry()
