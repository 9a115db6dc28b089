"""A readable summary of a bundle (what `lerobot-edge info` prints), and its JSON form."""

from __future__ import annotations

from pathlib import Path

from .bundle import Bundle


def bundle_info(path: str | Path, verify: bool = True) -> dict:
    """Manifest highlights plus which file sets are present and whether their checksums verify."""
    b = Bundle.open(path, verify=verify)
    m = b.manifest
    return {
        "path": str(b.path), "schema_version": m["schema_version"], "lerobot_edge_version": m["lerobot_edge_version"],
        "policy": m["policy"]["type"], "target": m["target"], "precision": m["precision"], "opset": m["opset"],
        "source": m["source"], "checksums_verified": verify,
        "file_sets": {s: b.has_files(s) for s in m["files"]},
        "graphs": [{"name": g.name, "file": g.file, "flops": g.flops,
                    "inputs": [i.to_json() for i in g.inputs], "outputs": [o.to_json() for o in g.outputs],
                    "tolerance": g.tolerance, "artifacts": g.artifacts} for g in b.graphs.values()],
        "observations": m["observations"], "action": m["action"], "normalization": m["normalization"],
        "runtime": m["runtime"], "validation": {k: v for k, v in m["validation"].items() if k != "graphs"},
        "preprocess": m.get("preprocess"),
    }


def format_info(info: dict) -> str:
    def shape(s):
        return "(" + ", ".join(str(x) for x in s) + ")"
    src = info["source"]
    lines = [
        f"bundle      {info['path']}",
        f"policy      {info['policy']}   target {info['target']}   precision {info['precision']}   opset {info['opset']}",
        f"source      {src.get('repo_id') or src.get('path')}" + (f" @ {src['revision']}" if src.get("revision") else ""),
        f"weights     sha256 {src.get('weights_sha256', '?')[:16]}…",
        f"schema      {'.'.join(map(str, info['schema_version']))} (lerobot-edge {info['lerobot_edge_version']}), "
        f"checksums {'verified' if info['checksums_verified'] else 'not checked'}",
        "file sets   " + ", ".join(f"{k}{'' if v else ' (absent)'}" for k, v in info["file_sets"].items()),
        "observations:",
    ]
    for k, o in info["observations"].items():
        raw = "  uint8 HWC frame into the graph" if o.get("frame") else ""
        lines.append(f"  {k:<40} {o['kind']:<9} {shape(o['shape']):<16} {info['normalization'].get(k, 'IDENTITY')}{raw}")
    if info.get("preprocess"):
        lines.append("preprocess  in the graphs: " + "; ".join(info["preprocess"].get("steps", [])))
    a = info["action"]
    lines.append(f"action      {a['key']} {shape(a['shape'])} {info['normalization'].get(a['key'], 'IDENTITY')}")
    lines.append("runtime     " + ", ".join(f"{k}={v}" for k, v in info["runtime"].items()))
    lines.append("graphs:")
    for g in info["graphs"]:
        io = ", ".join(f"{i['name']}{shape(i['shape'])}" for i in g["inputs"])
        out = ", ".join(f"{o['name']}{shape(o['shape'])}" for o in g["outputs"])
        flops = f"  {g['flops'] / 1e9:.2f} GFLOP/call" if g.get("flops") else ""
        lines.append(f"  {g['name']}: {g['file']}{flops}\n    in  {io}\n    out {out}")
    v = info["validation"]
    verdict = {True: "passed", False: "FAILED", "skipped": "skipped"}.get(v.get("passed"), str(v.get("passed")))
    lines.append(f"validation  {verdict}" + (f" with {v['backend']} ({v['precision']})" if "backend" in v else ""))
    lines += [f"  {line}" for line in v.get("lines", [])]
    return "\n".join(lines)
