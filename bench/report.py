from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure, with its target when it has one."""

    name: str
    value: str
    target: str = ""
    met: bool | None = None

    def line(self) -> str:
        verdict = "" if self.met is None else ("met" if self.met else "NOT met")
        return f"{self.name:<52} {self.value:>12}  {self.target:<8} {verdict}"
