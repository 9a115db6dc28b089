"""Accuracy gate, in the manner of optimum's validate_model_outputs: output names, then shapes, then values
(max abs error and cosine similarity per output against its named tolerance), over several seeded trials;
every failure is collected and reported at once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class OutputReport:
    name: str
    max_abs: float = 0.0
    cosine: float = 1.0
    atol: float = 0.0
    min_cosine: float = 1.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class GraphReport:
    graph: str
    backend: str
    trials: int
    outputs: list[OutputReport]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def to_json(self) -> dict:
        return {"graph": self.graph, "backend": self.backend, "trials": self.trials, "passed": self.passed,
                "seconds": round(self.seconds, 3),
                "outputs": {o.name: {**{k: v for k, v in asdict(o).items() if k != "name"}, "passed": o.passed}
                            for o in self.outputs}}

    def lines(self) -> list[str]:
        out = []
        for o in self.outputs:
            mark = "ok  " if o.passed else "FAIL"
            out.append(f"{mark} {self.graph}.{o.name}: max|err| {o.max_abs:.3g} (atol {o.atol:g}), cosine "
                       f"{o.cosine:.7f} (min {o.min_cosine:g})" + "".join(f"; {p}" for p in o.problems))
        return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def compare(graph: str, backend: str, expected: list[dict[str, np.ndarray]], actual: list[dict[str, np.ndarray]],
            tolerance: dict[str, dict[str, float]]) -> GraphReport:
    """Compare trial by trial; per output keep the worst max-abs and cosine over trials."""
    reports = {name: OutputReport(name, atol=t["atol"], min_cosine=t["min_cosine"]) for name, t in tolerance.items()}
    for exp, act in zip(expected, actual):
        for name, rep in reports.items():
            if name not in act:
                rep.problems.append(f"output missing (have {sorted(act)})")
                continue
            a, e = np.asarray(act[name]), np.asarray(exp[name])
            if a.shape != e.shape:
                rep.problems.append(f"shape {a.shape} != reference {e.shape}")
                continue
            if not np.isfinite(a).all():
                rep.problems.append("non-finite values")
                continue
            rep.max_abs = max(rep.max_abs, float(np.abs(a.astype(np.float64) - e).max(initial=0.0)))
            rep.cosine = min(rep.cosine, cosine(a, e))
    for rep in reports.values():
        if rep.max_abs > rep.atol:
            rep.problems.append("max abs error above tolerance")
        if rep.cosine < rep.min_cosine:
            rep.problems.append("cosine below tolerance")
        rep.problems = list(dict.fromkeys(rep.problems))
    return GraphReport(graph, backend, len(expected), list(reports.values()))
