"""Bundles and checkpoints on the Hugging Face Hub: `hub_download` fetches a file subset (checkpoints, bundles,
tokenizers) with one clear error; `push_bundle` uploads a verified bundle with a generated model card;
`load_policy("user/repo")` downloads only the file sets the chosen backend needs (runtime/loader.py).
huggingface_hub is imported only when called, so importing this module costs nothing on the robot."""

from __future__ import annotations

import json
from pathlib import Path

from .bundle import Bundle
from .errors import HubUnavailableError


def hub_download(repo_id: str, revision: str | None, allow_patterns: list[str],
                 local_dir: Path | None = None) -> Path:
    """snapshot_download with the Hub's many failure modes folded into one clear error."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (GatedRepoError, RepositoryNotFoundError,
                                            RevisionNotFoundError)
    except ImportError as e:  # pragma: no cover - a base dependency
        raise HubUnavailableError("huggingface_hub is not installed") from e
    try:
        kw = {"local_dir": str(local_dir)} if local_dir else {}
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns, **kw))
    except GatedRepoError as e:
        raise HubUnavailableError(f"{repo_id}: gated on the Hub; accept its terms and `hf auth login`") from e
    except RevisionNotFoundError as e:
        raise HubUnavailableError(f"{repo_id}: revision {revision!r} not found on the Hub") from e
    except RepositoryNotFoundError as e:
        raise HubUnavailableError(f"{repo_id}: no such repo on the Hub (or it is private)") from e
    except Exception as e:  # offline, DNS, timeouts, proxies: one message
        raise HubUnavailableError(f"{repo_id}: cannot download from the Hugging Face Hub ({type(e).__name__}: "
                                  f"{e}). Pass a local checkpoint directory instead.") from e


def model_card(bundle: Bundle, repo_id: str) -> str:
    """README.md for the Hub: what the bundle is, where it came from, how accurate and fast it is; the metadata
    block is huggingface_hub's ModelCardData (base_model only when the checkpoint came from the Hub)."""
    from huggingface_hub import ModelCard, ModelCardData

    m = bundle.manifest
    src, val = m["source"], m["validation"]
    meta = ModelCardData(license=src.get("license") or "other", library_name="lerobot-edge",
                         tags=["lerobot", "lerobot-edge", "robotics", m["policy"]["type"], m["target"]],
                         base_model=src.get("repo_id"))
    graphs = "\n".join(f"| {g.name} | `{g.file}` | {', '.join(i.name for i in g.inputs)} | "
                       f"{', '.join(o.name for o in g.outputs)} |" for g in bundle.graphs.values())
    checks = "\n".join(f"    {line}" for line in val.get("lines", [])) or "    (not validated)"
    origin = src.get("repo_id") or src.get("path", "?")
    bench = ""
    bench_file = bundle.path / "bench.json"
    if bench_file.is_file():
        rows = json.loads(bench_file.read_text()).get("results", [])
        bench = "\n## Latency\n\n| backend | p50 ms | p99 ms |\n|---|---|---|\n" + "\n".join(
            f"| {r['name']} | {r['stages']['total']['p50_ms']:.1f} | {r['stages']['total']['p99_ms']:.1f} |"
            for r in rows if r.get("stages")) + "\n"
    return str(ModelCard(f"""---
{meta.to_yaml()}
---
# {repo_id}

A lerobot-edge bundle of the LeRobot **{m['policy']['type']}** policy
`{origin}`{f" @ `{src['revision']}`" if src.get("revision") else ""}, exported to **{m['target']}** at
**{m['precision']}** (opset {m['opset']}). Runs with numpy and one backend — no torch, no lerobot.

```python
from lerobot_edge import load_policy
policy = load_policy("{repo_id}")          # add revision="<commit>" to pin it
policy.reset()
action = policy.select_action(observation)  # LeRobot feature keys; images uint8 HWC RGB
```

| graph | file | inputs | outputs |
|---|---|---|---|
{graphs}

## Validation against PyTorch ({val.get('backend', '-')}, {val.get('precision', '-')}): {val.get('passed')}

{checks}

Source weights sha256: `{src.get('weights_sha256', '?')}`. Checksums of every file are in `checksums.sha256`.
{bench}"""))


def push_bundle(bundle: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                token: str | None = None, commit_message: str | None = None) -> str:
    """Upload a verified bundle (every file set) with a generated README.md; returns the commit URL."""
    b = Bundle.open(bundle)
    card = model_card(b, repo_id)
    try:
        from huggingface_hub import CommitOperationAdd, HfApi
    except ImportError as e:  # pragma: no cover - a base dependency
        raise HubUnavailableError("huggingface_hub is not installed") from e
    files = ["manifest.json", "checksums.sha256", *{f for fs in b.manifest["files"].values() for f in fs}]
    ops = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(b.file(f))) for f in sorted(set(files))]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(repo_id, ops, commit_message=commit_message or "Upload lerobot-edge bundle",
                                 revision=revision)
    except Exception as e:  # offline, auth, permissions: one message
        raise HubUnavailableError(f"{repo_id}: upload to the Hugging Face Hub failed ({type(e).__name__}: {e})") from e
    return str(info.commit_url)
