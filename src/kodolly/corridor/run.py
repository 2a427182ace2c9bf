"""The driver: plan -> map (the engine) -> reduce (the chain, in position order) -> sink.

:func:`execute` runs a :class:`~kodolly.corridor.spec.RunSpec` to the end and returns the
:class:`~kodolly.corridor.sink.RunResult`; :func:`iter_chunks` streams the reduced chunks of a spec
into a caller's sink (``iter_rows``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..converters import Converter
from ..io.hub_source import is_hub_url, with_card_license
from ..io.sources import Input, expand_inputs
from ..registry import get_converter
from .chain import FilterChain
from .chunks import Chunk
from .convert import GroupWork, Work, check_category
from .member_reader import MemberReader
from .shards import Shard, plan_shards
from .sink import RunResult, Sink
from .spec import RunSpec


@dataclass
class PreparedRun:
    """A spec made ready: converters resolved and checked, inputs expanded, the chain built.

    :meth:`shards` plans the shards (a generator) and records each as planned in :attr:`planned`.
    """

    spec: RunSpec
    converters: list[Converter]
    inputs: list[list[Input]]
    chain: FilterChain
    work: Work
    planned: list[dict[str, Any]] = field(default_factory=list)
    # input bytes of each planned shard not yet done (seq -> bytes), for the progress bar
    pending_bytes: dict[int, int] = field(default_factory=dict)
    # input bytes planned so far per input (its ordinal -> bytes), so the shard that is the rest of an
    # input counts only what its earlier shards did not
    planned_bytes: dict[int, int] = field(default_factory=dict)
    reader: MemberReader | None = None

    def shards(self, readers: bool = False) -> Iterator[Shard]:
        """``readers``: the engine's workers share this machine's files, so stream inputs (zip members,
        gzip) are planned by reader processes (:mod:`.member_reader`), not in this process."""
        shard_bytes = self.spec.engine_options.get("shard_bytes") if self.spec.engine_options else None
        inputs = self.all_inputs
        if readers and self.reader is None:
            self.reader = MemberReader()
        for shard in plan_shards(list(zip(self.converters, self.inputs)), shard_bytes=shard_bytes, max_records=self.spec.batch_size,
                                 reader=self.reader if readers else None):
            self.planned.append(shard.describe())
            nbytes = self._bytes_of(shard, inputs)
            self.pending_bytes[shard.seq] = nbytes
            self.planned_bytes[shard.input] = self.planned_bytes.get(shard.input, 0) + nbytes
            yield shard

    def _bytes_of(self, shard: Shard, inputs: list[Input]) -> int:
        inp = inputs[shard.input] if 0 <= shard.input < len(inputs) else None
        before = self.planned_bytes.get(shard.input, 0)
        if shard.rest or shard.skip:  # the rest of an input whose cutting stopped (JSON items, CSV)
            return max(0, (inp.size or 0) - before) if inp is not None else 0
        if inp is not None and inp.packed_size is None and inp.name.lower().endswith(".gz") and (shard.range is not None or shard.items is not None):
            # a range of a .gz read as a stream: its offsets are inflated bytes, the total the file's
            return max(0, min(inp.packed_read, inp.size or 0) - before)
        if shard.range is not None:
            return shard.range.length
        if shard.items is not None:
            return shard.items.end - shard.items.start
        if shard.kind == "combine":  # its inputs' bytes are their shards'
            return 0
        if shard.kind == "group":
            return sum(inp.size or 0 for inp in self.inputs[shard.group])
        return inputs[shard.input].size or 0 if 0 <= shard.input < len(inputs) else 0

    def total_bytes(self) -> int:
        """Bytes of all inputs (what the progress bar counts towards)."""
        return sum(inp.size or 0 for inp in self.all_inputs)

    def done(self, chunk: Chunk) -> int:
        """The input bytes of ``chunk``'s shard (once); its spooled range is let go."""
        if self.reader is not None:
            self.reader.release(chunk.shard)
        return self.pending_bytes.pop(chunk.shard, 0)

    def close(self) -> None:
        """The end of the run, whatever happened: the reader's spool removed."""
        if self.reader is not None:
            self.reader.close()

    @property
    def all_inputs(self) -> list[Input]:
        return [inp for group in self.inputs for inp in group]

    @property
    def named_inputs(self) -> list[tuple[str, str]]:
        """``(input name, converter name)`` of every input, in reading order (the report's inputs)."""
        return [(inp.name, conv.name) for conv, group in zip(self.converters, self.inputs) for inp in group]


def prepare(spec: RunSpec) -> PreparedRun:
    """Check every group before reading any input (a bad option fails at once)."""
    converters, inputs, groups, spec_groups = [], [], [], []
    for group in spec.groups:
        conv = group.converter if isinstance(group.converter, Converter) else get_converter(group.converter)
        conv.context(group.options)
        check_category(group.category)
        converters.append(conv)
    for group, conv in zip(spec.groups, converters):
        group_inputs = expand_inputs(list(group.sources))
        inputs.append(group_inputs)
        # hf:// inputs: the dataset card's licence when the user named none (in the manifest and the rows)
        options = with_card_license(group.options, conv, group_inputs)
        if options is not group.options:
            group = dataclasses.replace(group, options=options)
        spec_groups.append(group)
        # a worker re-expands the sources; hf:// ones as the files fetched here (no second Hub request)
        hub = any(isinstance(src, str) and is_hub_url(src) for src in group.sources)
        groups.append(GroupWork(conv, dict(group.options or {}), group.category, list(group_inputs if hub else group.sources)))
    if spec_groups != list(spec.groups):
        spec = dataclasses.replace(spec, groups=tuple(spec_groups))
    chain = FilterChain(spec.build_filters())
    return PreparedRun(spec, converters, inputs, chain, Work(groups, chain, inputs))


def _readers(engine: Any) -> bool:
    """Whether the engine's workers read this machine's files (then reader processes plan stream inputs)."""
    return bool(getattr(engine, "local_files", False))


def _engine(spec: RunSpec):
    from .engines import get_engine

    options = {k: v for k, v in (spec.engine_options or {}).items() if k != "shard_bytes"}
    return get_engine(spec.engine, workers=spec.workers, **options)


def iter_chunks(run: PreparedRun, sink: Sink) -> Iterator[Chunk]:
    """The run's reduced chunks, in position order, each written to ``sink`` before it is yielded."""
    engine = _engine(run.spec)
    try:
        for chunk in engine.map(run.shards(readers=_readers(engine)), run.work):  # iter_rows: the caller holds the limits in force
            run.done(chunk)
            chunk = run.chain.reduce(chunk)
            sink.write(chunk)
            yield chunk
    finally:
        engine.close()
        run.close()


def execute(spec: RunSpec, *, progress: bool | None = False, keep_rows: bool | None = None, html: Any = None) -> RunResult:
    """Run ``spec`` to the end: write its output (or keep the rows in ``result.rows`` when it has
    none), its rejects, report and manifest. Raises :class:`~kodolly.errors.TallyMismatchError` if
    ``read != written + rejected``; nothing that looks finished is left behind on any failure.
    The spec's input limits are in force for the run (worker processes inherit them). ``html``
    (:class:`~kodolly.report_html.HtmlOptions`): also write the HTML page."""
    with limits_of(spec):
        return _execute(spec, progress=progress, keep_rows=keep_rows, html=html)


def limits_of(spec: RunSpec):
    """A context in which the spec's input limits (:mod:`kodolly.io.limits`) are in force."""
    from ..io import limits

    return limits.use(spec.limits or None)


def _execute(spec: RunSpec, *, progress: bool | None, keep_rows: bool | None, html: Any = None) -> RunResult:
    from ..io.writers import output_paths

    run = prepare(spec)
    out = spec.output
    paths = output_paths(Path(out.path), out.format, out.rejects) if out.path is not None else None
    keep = paths is None if keep_rows is None else keep_rows
    engine = _engine(spec)  # before the sink opens its temporaries: a missing engine leaves nothing behind
    try:
        sink = Sink(paths, dolly_only=out.dolly_only, filters=run.chain.filters, progress=progress, keep_rows=keep,
                    total_bytes=run.total_bytes(), inputs=run.named_inputs, html=html if paths is not None else None)
    except BaseException:
        engine.close()
        raise
    try:
        if hasattr(engine, "execute"):  # an engine that runs the whole corridor itself (e.g. on a cluster)
            engine.execute(run, sink)
        else:
            for chunk in engine.map(run.shards(readers=_readers(engine)), run.work):
                sink.write(run.chain.reduce(chunk), nbytes=run.done(chunk))
    except BaseException:
        sink.abort()
        raise
    finally:
        engine.close()
        run.close()
    return sink.close(lambda outputs, rejects, tally: manifest_of(run, engine, sink, outputs, rejects, tally, paths.format))


def manifest_of(run: PreparedRun, engine: Any, sink: Sink, outputs, rejects, tally, output_format: str) -> dict[str, Any]:
    """The manifest of a finished run (inputs with the hashes of the bytes read, groups, the filter
    chain, the run spec for ``--replay``, the shard plan, the engine, counts, outputs)."""
    from ..manifest import build_manifest, layout_entry

    spec = run.spec
    first, conv = spec.groups[0], run.converters[0]
    return build_manifest(
        inputs=run.all_inputs,
        input_hashes=sink.inputs_read,
        converter=conv,
        options=conv.context(first.options).options,
        category=first.category,
        groups=[
            {
                "converter": c.name,
                "options": c.context(g.options).options,
                "category_override": g.category,
                "inputs": [inp.name for inp in inputs],
                **layout_entry(c),
            }
            for g, c, inputs in zip(spec.groups, run.converters, run.inputs)
        ],
        filters=run.chain.filters,
        tally=tally,
        outputs=outputs,
        rejects=rejects,
        output_format=output_format,
        dolly_only=spec.output.dolly_only,
        run_spec=spec.as_dict(),
        shards=run.planned,
        engine={"name": engine.name, "workers": getattr(engine, "n", 1), **getattr(engine, "details", {})},
    )
