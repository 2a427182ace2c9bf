"""``kodolly publish`` (Hub folder), ``kodolly push`` (upload it) and ``kodolly export`` (trainer layouts)."""

from __future__ import annotations

import click

from ..errors import ConfigError


def _size(text: str | None) -> int | None:
    """``500MB``, ``1.5GB``, ``200000`` -> bytes."""
    if text is None:
        return None
    units = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "b": 1}
    low = text.strip().lower().replace("ib", "b")
    for unit, mult in units.items():
        if low.endswith(unit):
            try:
                return int(float(low[: -len(unit)]) * mult)
            except ValueError:
                break
    try:
        return int(low)
    except ValueError:
        raise ConfigError(f"--max-shard-bytes {text!r}: expected a size like 200MB") from None


@click.command("publish")
@click.argument("output", type=click.Path(exists=True))
@click.option("-o", "--folder", "folder", required=True, type=click.Path(), help="The Hub folder to write.")
@click.option("--manifest", type=click.Path(exists=True), help="The output's manifest (default: OUTPUT's <stem>.manifest.json).")
@click.option("--max-shard-rows", type=int, help="At most this many rows per parquet shard.")
@click.option("--max-shard-bytes", default="256MB", show_default=True, help="At most about this much Arrow data per shard.")
@click.option("--title", help="The card's title (default: the repo or folder name).")
@click.option("--repo-id", help="The repo the folder is meant for (used in the card's usage example).")
@click.option("--overwrite", is_flag=True, help="Replace FOLDER if it exists.")
def publish_command(output, folder, manifest, max_shard_rows, max_shard_bytes, title, repo_id, overwrite) -> None:
    """Build a Hub-ready dataset folder from a kodolly OUTPUT (parquet, JSONL or datasets folder).

    Writes data/<split>-NNNNN-of-NNNNN.parquet shards, a README.md dataset card generated from the
    manifest, and a copy of the manifest. Upload it with `kodolly push FOLDER REPO_ID`.
    """
    from ..hub import build_folder

    result = build_folder(
        output, folder, manifest_path=manifest, max_shard_rows=max_shard_rows,
        max_shard_bytes=_size(max_shard_bytes), title=title, repo_id=repo_id, overwrite=overwrite,
    )
    for s in result.splits.values():
        click.echo(f"{s.name:<12}{s.rows:>10} rows  {len(s.shards)} shard(s)")
    for s in result.licenses.sources:
        click.echo(f"source {s.source or '(none)'}: {s.license or 'unknown licence'} ({s.rows} rows)"
                   + (f" [{', '.join(sorted(s.restrictions))}]" if s.restrictions else ""))
    click.echo(f"wrote {result.folder} ({result.rows} rows)")


@click.command("push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("repo_id")
@click.option("--private/--public", default=True, show_default=True, help="Visibility of a repo this push creates.")
@click.option("--revision", help="Branch to commit to (created if missing; default main).")
@click.option("--endpoint", help="Hub endpoint (default: $HF_ENDPOINT, else huggingface.co).")
@click.option("-m", "--message", help="Commit message.")
@click.option("--i-have-permission", "i_have_permission", is_flag=True,
              help="Allow a public push of sources whose licences forbid derivatives, redistribution or commercial use.")
@click.option("--retries", default=4, show_default=True, help="Retries of transient errors (5xx, 429, connection).")
@click.option("--retry-wait", default=1.0, show_default=True, help="First wait between retries, seconds (doubles each time).")
def push_command(folder, repo_id, private, revision, endpoint, message, i_have_permission, retries, retry_wait) -> None:
    """Upload a Hub FOLDER (from `kodolly publish`) to the dataset repo REPO_ID as one commit.

    The token is read from the HF_TOKEN environment variable only. A public push of sources with
    no-derivatives (KorQuAD, CC BY-ND), no-redistribution (AI Hub terms) or non-commercial
    (CC BY-NC) licences is refused unless --i-have-permission is given; a private push warns.
    """
    from ..hub import push

    result = push(
        folder, repo_id, private=private, revision=revision, endpoint=endpoint, message=message,
        i_have_permission=i_have_permission, retries=retries, retry_wait=retry_wait,
        warn=lambda text: click.echo(f"kodolly: warning: {text}", err=True),
    )
    where = f" (revision {result.revision})" if result.revision else ""
    click.echo(f"pushed {len(result.files)} files to {result.repo_url}{where}, {'private' if result.private else 'public'}")
    click.echo(f"commit {result.commit_oid} {result.commit_url}")


@click.command("export")
@click.argument("output", type=click.Path(exists=True), required=False)
@click.option("-o", "--dest", "dest", required=True, type=click.Path(), help="The file to write: x.jsonl or x.parquet.")
@click.option("--to", "target", required=True, type=click.Choice(["llamafactory", "axolotl"]), help="The trainer.")
@click.option("--style", type=click.Choice(["alpaca", "chat", "preference"]),
              help="alpaca, chat (sharegpt / messages) or preference (default: preference if rows have `rejected`, else alpaca).")
@click.option("--name", help="Dataset name in dataset_info.json (default: the file's stem).")
@click.option("--system", help="A system prompt to attach to every example.")
@click.option("--split", default="train", show_default=True, help="Which split to export (`all` for every row).")
@click.option("--check", is_flag=True,
              help="Read the written file back the way the trainer maps it (dataset_info.json entry / YAML) and fail "
                   "if a row would load empty or with a wrong role. Without OUTPUT: check DEST as written earlier.")
@click.option("--config", "config_path", type=click.Path(exists=True),
              help="With --check and no OUTPUT, for axolotl: the YAML file that names DEST.")
def export_command(output, dest, target, style, name, system, split, check, config_path) -> None:
    """Export a kodolly OUTPUT in the column layout LLaMA-Factory or axolotl reads.

    Prints the dataset_info.json entry (LLaMA-Factory; also written beside the export) or the
    axolotl config snippet that points at the file (by its absolute path).
    """
    from ..export_check import check_export, check_written

    if output is None:
        if not check:
            raise click.UsageError("give the OUTPUT to export (or --check to check DEST as written earlier)")
        rows = check_written(dest, target, name=name, config=config_path)
        click.echo(f"check: {dest} loads in {target}: {rows} rows, roles and texts as mapped", err=True)
        return
    from ..export import export

    result = export(output, dest, target=target, style=style, name=name, system=system, split=split)
    click.echo(f"wrote {result.path} ({result.rows} rows, {result.target} {result.style}, {result.format})", err=True)
    if result.dataset_info is not None:
        click.echo(f"updated {result.dataset_info}", err=True)
    if check:
        rows = check_export(result)
        click.echo(f"check: {result.path} loads in {target}: {rows} rows, roles and texts as mapped", err=True)
    click.echo(result.snippet.rstrip())


COMMANDS = [publish_command, push_command, export_command]
