"""Finding (and with ``--create-meters`` creating) the Stripe meter of each metered metric."""

from __future__ import annotations

from billflow_usage.backends.base import BaseBackend, ReadNotSupported, RemoteMeter
from billflow_usage.models import Metric
from billflow_usage.reconcile.report import ErrorEntry, MeterEntry, Report
from billflow_usage.redaction import redact


def resolve_meters(
    metrics: list[Metric],
    backend: BaseBackend,
    report: Report,
    *,
    create: bool,
    write: bool,
) -> dict[int, str]:
    """Each metered metric's meter ID (metric pk -> ``mtr_...``; absent when none).

    Metrics without a stored ``stripe_meter_id`` are looked up by event name among the
    account's active meters; with ``create`` a missing one is created. IDs found or created
    are stored on the metric when ``write`` (not in a dry run).
    """
    found = {m.pk: m.stripe_meter_id for m in metrics if m.is_metered and m.stripe_meter_id}
    missing = [m for m in metrics if m.is_metered and not m.stripe_meter_id]
    if not missing:
        return found
    try:
        remote = backend.list_meters()
    except ReadNotSupported as exc:
        report.errors.append(ErrorEntry("meters", "", "", "unsupported", str(exc)))
        return found
    except Exception as exc:
        report.errors.append(ErrorEntry("meters", "", "", type(exc).__name__, redact(str(exc))))
        return found
    active = {m.event_name: m for m in remote if m.status == "active"}
    for metric in missing:
        event_name = metric.meter_event_name
        meter: RemoteMeter | None = active.get(event_name)
        action = "found"
        if meter is None and create and write:
            try:
                meter = backend.create_meter(
                    event_name=event_name,
                    formula=metric.aggregation,
                    display_name=str(metric),
                )
            except Exception as exc:
                report.errors.append(
                    ErrorEntry("meters", "", metric.key, type(exc).__name__, redact(str(exc)))
                )
                report.meters.append(
                    MeterEntry(
                        metric.key,
                        event_name,
                        "",
                        "missing",
                        detail="creating it failed (see errors); Stripe refuses this metric's "
                        "usage until it has a meter",
                    )
                )
                continue
            action = "created"
            report.count("meters_created")
        if meter is None:
            report.meters.append(_missing(metric, event_name, create=create))
            continue
        if meter.formula != metric.aggregation:
            report.errors.append(
                ErrorEntry(
                    "meters",
                    "",
                    metric.key,
                    "formula_mismatch",
                    f"Stripe meter {meter.id} aggregates with {meter.formula!r} but the metric "
                    f"says {metric.aggregation!r}: totals can't agree until one of them is fixed.",
                )
            )
        found[metric.pk] = meter.id
        if write:
            Metric.objects.filter(pk=metric.pk).update(stripe_meter_id=meter.id)
            metric.stripe_meter_id = meter.id
        report.meters.append(MeterEntry(metric.key, event_name, meter.id, action, applied=write))
    return found


def _missing(metric: Metric, event_name: str, *, create: bool) -> MeterEntry:
    """A metered metric without a meter: Stripe refuses its usage; say what fixes it."""
    if create:  # a dry run with --create-meters
        return MeterEntry(
            metric.key,
            event_name,
            "",
            "created",
            detail="a dry run creates nothing: run billflow_sync --create-meters without --dry-run",
        )
    return MeterEntry(
        metric.key,
        event_name,
        "",
        "missing",
        detail=f"no active Stripe meter has the event name {event_name!r}, so Stripe refuses "
        "this metric's usage: run billflow_sync --create-meters (or set the metric's "
        "stripe_meter_id)",
    )
