"""What ``billflow_setup`` found: one finding per thing checked, each with its fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class State(StrEnum):
    OK = "ok"
    #: Made or stored by this run.
    DONE = "done"
    #: Worth knowing, but nothing is wrong (no customer subscribed yet).
    NOTE = "note"
    #: Setup is incomplete until someone runs ``fix``.
    MISSING = "missing"


@dataclass(frozen=True)
class Finding:
    #: ``metrics``, ``meters``, ``prices``, ``links`` or ``sync``.
    step: str
    metric: str
    state: State
    message: str
    #: The command (or the admin or Dashboard step) that fixes a missing thing.
    fix: str = ""


@dataclass
class SetupReport:
    check: bool
    findings: list[Finding] = field(default_factory=list)

    def add(self, step: str, metric: str, state: State, message: str, fix: str = "") -> None:
        self.findings.append(Finding(step, metric, state, message, fix))

    @property
    def missing(self) -> list[Finding]:
        return [f for f in self.findings if f.state == State.MISSING]

    @property
    def complete(self) -> bool:
        return not self.missing

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "check": self.check,
            "complete": self.complete,
            "missing": len(self.missing),
            "findings": [{**asdict(f), "state": str(f.state)} for f in self.findings],
        }

    def lines(self) -> list[str]:
        """The findings as text, step by step, each missing one followed by its fix."""
        out: list[str] = []
        for finding in self.findings:
            subject = f"{finding.step} {finding.metric}".strip()
            out.append(f"[{finding.state}] {subject}: {finding.message}")
            if finding.fix:
                out.append(f"    fix: {finding.fix}")
        return out
