"""raygap measure: every measure of the catalogue for kept embeddings, or for a model on a study
file's data (no training, no Ray)."""

from __future__ import annotations

import argparse
from pathlib import Path

from raygap.cli.console import format_table
from raygap.config import SpecError, load_spec


def cmd_measure(args: argparse.Namespace) -> int:
    from raygap import kept_files

    if args.embeddings and (args.model or args.pretrained or args.set):
        raise SpecError("--model, --pretrained and --set choose what to measure with --data; --embeddings are measured as they are")
    if (args.shift or args.ablate) and not args.embeddings:
        raise SpecError("--shift and --ablate change kept embeddings: they go with --embeddings")
    if args.embeddings:
        path = Path(args.embeddings)
        if not path.is_file():
            raise SpecError(f"--embeddings: file not found: {path}")
        try:
            image, text, owner = kept_files.read_embeddings(path)
        except ValueError as error:
            raise SpecError(f"--embeddings: {error}") from None
        output = Path(args.output) if args.output else path.with_name(f"{path.stem}-measures.parquet")
        from raygap.clip.measure import measure_embeddings

        print(f"measuring {len(image)} image and {len(text)} caption embedding(s) of {path}")
        row = {"source": str(path), **measure_embeddings(image, text, owner, args.gap_pairs, args.seed)}
        if args.shift:
            _shift(image, text, owner, output.with_name(f"{output.stem}-shift.parquet"))
        if args.ablate:
            _ablate(image, text, owner, args.ablate, output.with_name(f"{output.stem}-ablate.parquet"))
    else:
        overrides = [*args.set, *([f"model.name={args.model}"] if args.model else [])]
        overrides += [f"model.pretrained={Path(args.pretrained).absolute()}"] if args.pretrained else []
        spec = load_spec(args.data, overrides)
        cfg = spec.defaults()
        from raygap.data import check_tables
        from raygap.study.preflight import check_checkpoint

        check_tables(cfg, str(spec.path))
        check_checkpoint(cfg, str(spec.path))
        output = Path(args.output) if args.output else Path("results") / f"measure-{cfg.name}.parquet"
        from raygap.clip.measure import measure_model

        weights = cfg.model.pretrained or f"random weights (train.seed {cfg.train.seed})"
        print(f"measuring {cfg.model.name} from {weights} on {spec.path}'s eval split")
        row = {"source": f"{cfg.model.name}:{cfg.model.pretrained or 'random'}", **measure_model(cfg)}
    print(format_table(row))
    kept_files.write_measures(output, [row])
    print(f"measures → {output}")
    return 0


def _shift(image, text, owner, output: Path) -> None:
    from raygap import kept_files
    from raygap.clip.measure import shift_curve

    rows = shift_curve(image, text, owner)
    print("shift λ (Liang et al.): both modalities moved along the gap vector; 0.5 meets in the middle")
    print(f"{'shift':>8}  {'gap':>7}  {'i→t R@1':>8}  {'t→i R@1':>8}")
    for r in rows:
        name = "centred" if r["centred"] else f"{r['shift']:+.2f}"
        print(f"{name:>8}  {r['modality_gap']:7.4f}  {r['image_to_text_r1']:8.4f}  {r['text_to_image_r1']:8.4f}")
    kept_files.write_measures(output, rows)
    print(f"shift curve → {output}")


def _ablate(image, text, owner, removed: int, output: Path) -> None:
    from raygap import kept_files
    from raygap.clip.measure import ablation_curve

    rows = ablation_curve(image, text, owner, removed)
    print("coordinates removed by |Δ_k|, largest first (Schrodi et al.), the rest renormalized")
    print(f"{'removed':>8}  {'gap':>7}  {'RMG':>7}  {'i→t R@1':>8}  {'t→i R@1':>8}")
    for r in rows:
        gaps = f"{r['modality_gap']:7.4f}  {r['relative_gap']:7.4f}"
        print(f"{r['removed']:>8}  {gaps}  {r['image_to_text_r1']:8.4f}  {r['text_to_image_r1']:8.4f}")
    kept_files.write_measures(output, rows)
    print(f"ablation curve → {output}")


def add_measure_command(commands) -> None:
    measure = commands.add_parser("measure", help="every measure of the gap for kept embeddings, or for a model on a study's data")
    source = measure.add_mutually_exclusive_group(required=True)
    source.add_argument("--embeddings", metavar="FILE", help="an embeddings.parquet (artifacts: {embeddings: true} keeps one per seed)")
    source.add_argument("--data", metavar="STUDY", help="a study file: its data (eval and probe splits), model and eval sections")
    measure.add_argument("--model", metavar="NAME", help="with --data: the model (built-in or open_clip name), instead of the file's")
    measure.add_argument("--pretrained", metavar="PATH", help="with --data: a local checkpoint to measure (random weights without)")
    measure.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="with --data: override a study value")
    measure.add_argument("--gap-pairs", type=int, default=512, metavar="N", help="with --embeddings: pairs the gap is measured on")
    measure.add_argument("--seed", type=int, default=0, help="with --embeddings: seed of the gap pairs and the separability halves")
    measure.add_argument("--shift", action="store_true", help="with --embeddings: the gap and R@1 as the modalities shift (Liang et al.)")
    measure.add_argument(
        "--ablate", type=int, default=0, metavar="N", help="with --embeddings: the gap and R@1 as the N largest-gap coordinates go"
    )
    measure.add_argument("-o", "--output", metavar="FILE", help="where to write the row of measures (Parquet)")
    measure.set_defaults(handler=cmd_measure)
