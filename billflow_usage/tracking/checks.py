"""System checks for tracker declarations (``billflow_usage.E101``...), each with a hint.

Declaring a tracker never raises: mistakes are reported here, by ``manage.py check`` and at
server start. Whether a metric exists is only checked against a database Django names in
``databases`` (``check --database default``, ``migrate``), as Django asks of such checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.core import checks
from django.db import DatabaseError, router, transaction

from billflow_usage import validation
from billflow_usage.conf import SETTINGS_NAME
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.models import Metric
from billflow_usage.tracking.base import ACTIONS, DELETE, Tracker
from billflow_usage.tracking.discovery import settings_declarers
from billflow_usage.tracking.metered import MeteredTracker
from billflow_usage.tracking.registry import TrackerRegistry, registry
from billflow_usage.tracking.resolvers import Resolver

FUNCTION_HINT = "Pass a function, or the dotted path 'package.module.function' to one."
KIND_HINT = "Use track() for metered metrics and track_quantity() for licensed (seat) ones."


@checks.register("billflow_usage")
def check_trackers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [*_settings_trackers(), *tracker_messages(registry, app_configs=app_configs)]


@checks.register("billflow_usage", checks.Tags.database)
def check_tracked_metrics(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Tagged ``database``: Django 6 gives every check all aliases unless a database is named,
    and leaves out only these checks, so runserver never fails on a database without metrics."""
    return list(_metrics(_checked_trackers(registry, app_configs), databases))


def tracker_messages(
    registry: TrackerRegistry,
    *,
    app_configs: Any = None,
    databases: Iterable[str] | None = None,
) -> list[checks.CheckMessage]:
    """Everything wrong with the trackers of ``registry``."""
    trackers = _checked_trackers(registry, app_configs)
    declarations = [message for tracker in trackers for message in _declaration(tracker)]
    return [*declarations, *_duplicates(trackers), *_metrics(trackers, databases)]


def _checked_trackers(registry: TrackerRegistry, app_configs: Any) -> list[Tracker]:
    return [
        tracker
        for tracker in registry.get_trackers()
        if app_configs is None
        or tracker.model is None
        or tracker.model._meta.app_config in app_configs
    ]


def _settings_trackers() -> Iterator[checks.CheckMessage]:
    for declarer in settings_declarers():
        problem = declarer.problem()
        if problem is not None:
            yield checks.Error(
                f"{SETTINGS_NAME}['TRACKERS'] entry {declarer.target!r} can't be used: {problem}",
                hint="List dotted paths to functions that declare trackers.",
                id="billflow_usage.E108",
            )


def _declaration(tracker: Tracker) -> Iterator[checks.CheckMessage]:
    obj = tracker.model
    if obj is None:
        yield checks.Error(
            f"{tracker!r}: {tracker.declared_model!r} is not an installed model, so nothing "
            "is tracked.",
            hint="Pass a model class, or 'app_label.ModelName' of an app in INSTALLED_APPS.",
            id="billflow_usage.E105",
        )
    if not isinstance(tracker.metric, str) or not tracker.metric:
        yield checks.Error(
            f"{tracker!r}: metric must be a metric key, got {tracker.metric!r}.",
            hint="Pass the key of a Metric, e.g. metric='api-calls'.",
            obj=obj,
            id="billflow_usage.E101",
        )
    for name, resolver in tracker.resolvers().items():
        problem = resolver.problem()
        if problem is not None:
            yield checks.Error(
                f"{tracker!r}: {name}={resolver.target!r} can't be called: {problem}",
                hint=FUNCTION_HINT,
                obj=obj,
                id="billflow_usage.E104",
            )
    if isinstance(tracker, MeteredTracker):
        yield from _metered(tracker)


def _metered(tracker: MeteredTracker) -> Iterator[checks.CheckMessage]:
    obj = tracker.model
    unknown = [action for action in tracker.on if action not in ACTIONS]
    if unknown or not tracker.on:
        yield checks.Error(
            f"{tracker!r}: on={tracker.on!r} names no action or unknown ones "
            f"({', '.join(map(repr, unknown)) or 'none given'}).",
            hint="on takes any of " + ", ".join(map(repr, ACTIONS)) + ".",
            obj=obj,
            id="billflow_usage.E103",
        )
    if not isinstance(tracker.value, Resolver):
        try:
            validation.whole_number(tracker.value)
        except InvalidUsage as exc:
            yield checks.Error(
                f"{tracker!r}: {exc}",
                hint="Pass a whole number, or a function of the instance returning one.",
                obj=obj,
                id="billflow_usage.E107",
            )
    if tracker.delta is not None and obj is not None:
        try:
            tracker.delta_field()
        except (LookupError, TypeError) as exc:
            yield checks.Error(
                f"{tracker!r}: {exc}",
                hint="delta names an integer, decimal or float field of the model.",
                obj=obj,
                id="billflow_usage.E106",
            )
        if tracker.value != 1:
            yield checks.Warning(
                f"{tracker!r}: value is ignored because delta={tracker.delta!r} decides it.",
                hint="Remove value, or remove delta.",
                obj=obj,
                id="billflow_usage.W102",
            )
    if tracker.reverse_on_delete and DELETE in tracker.actions:
        yield checks.Warning(
            f"{tracker!r}: on='delete' is ignored because reverse_on_delete=True decides "
            "what a delete records.",
            hint="Remove 'delete' from on, or use a second tracker to count deletions.",
            obj=obj,
            id="billflow_usage.W102",
        )


def _duplicates(trackers: list[Tracker]) -> Iterator[checks.CheckMessage]:
    """Unfiltered trackers that bill the same events twice: usually one declared twice."""
    seen: dict[tuple[object, str, str], MeteredTracker] = {}
    for tracker in trackers:
        if not isinstance(tracker, MeteredTracker) or tracker.when is not None:
            continue
        for action in sorted(tracker.actions):
            first = seen.setdefault((tracker.model, tracker.metric, action), tracker)
            if first is not tracker:
                yield checks.Warning(
                    f"{tracker!r} records every {action} that {first!r} records too, so "
                    "each is billed twice.",
                    hint="If it is declared twice by mistake (say in usage.py and in a "
                    "TRACKERS function), remove one; if both are meant, silence "
                    "billflow_usage.W103.",
                    obj=tracker.model,
                    id="billflow_usage.W103",
                )
                break


def _metrics(
    trackers: list[Tracker], databases: Iterable[str] | None
) -> Iterator[checks.CheckMessage]:
    """Metrics that don't exist, are of the other kind, are inactive, or can't bill what the
    tracker records (needs the DB)."""
    alias = router.db_for_read(Metric)
    keys = {tracker.metric for tracker in trackers if isinstance(tracker.metric, str)}
    if not keys or alias not in (databases or ()):
        return
    try:
        with transaction.atomic(using=alias):
            found = {
                key: (kind, active, aggregation)
                for key, kind, active, aggregation in Metric.objects.using(alias)
                .filter(key__in=keys)
                .values_list("key", "kind", "active", "aggregation")
            }
    except DatabaseError:
        return  # not migrated yet (migrate runs the checks first)
    for tracker in trackers:
        if not isinstance(tracker.metric, str):
            continue
        obj = tracker.model
        if tracker.metric not in found:
            yield checks.Error(
                f"{tracker!r}: no metric has the key {tracker.metric!r}, so nothing is "
                "recorded for it.",
                hint="Create the metric in the admin or a data migration, or fix the key.",
                obj=obj,
                id="billflow_usage.E101",
            )
            continue
        kind, active, aggregation = found[tracker.metric]
        if kind != tracker.kind:
            yield checks.Error(
                f"{tracker!r}: metric {tracker.metric!r} is {kind}.",
                hint=KIND_HINT,
                obj=obj,
                id="billflow_usage.E102",
            )
        elif not active:
            yield checks.Warning(
                f"{tracker!r}: metric {tracker.metric!r} is inactive, so nothing is recorded "
                "for it.",
                hint="Reactivate the metric in the admin, or remove the tracker.",
                obj=obj,
                id="billflow_usage.W101",
            )
        if isinstance(tracker, MeteredTracker) and kind == tracker.kind:
            yield from _aggregation(tracker, aggregation)


def _aggregation(tracker: MeteredTracker, aggregation: str) -> Iterator[checks.CheckMessage]:
    """What a count (or last) meter can't bill as the tracker asks."""
    obj = tracker.model
    constant = None if isinstance(tracker.value, Resolver) else tracker.value
    if aggregation == Metric.Aggregation.COUNT and (
        tracker.delta is not None or constant not in (None, 1)
    ):
        given = f"delta={tracker.delta!r}" if tracker.delta is not None else f"value={constant!r}"
        yield checks.Error(
            f"{tracker!r}: metric {tracker.metric!r} is a count metric, which counts every "
            f"event as one, so {given} can't be billed as asked (such a save keeps a failed "
            "row).",
            hint="Leave value at 1, or bill amounts with a sum metric.",
            obj=obj,
            id="billflow_usage.E109",
        )
    if tracker.reverse_on_delete and aggregation != Metric.Aggregation.SUM:
        yield checks.Warning(
            f"{tracker!r}: metric {tracker.metric!r} is a {aggregation} metric, which a "
            "negative event can't offset: reverse_on_delete only cancels usage not sent yet, "
            "and logs what stays billed.",
            hint="Cancel sent events in the admin within 24 hours, or use a sum metric.",
            obj=obj,
            id="billflow_usage.W104",
        )
