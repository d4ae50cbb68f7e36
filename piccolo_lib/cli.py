"""The ``piccolo`` command.

    piccolo quickstart [--mode quick|full|auto] [key=value ...]
    piccolo train CONFIG.yaml [key=value ...]
    piccolo eval MODEL [--benchmark local] [--dims 224,128,64] [--output DIR]
    piccolo data validate PATH_OR_META_LIST ... [--root DIR] [--batch-size N]
    piccolo data mine MODEL IN.jsonl OUT.jsonl [--range-min 50 --range-max 100]
    piccolo backbone build {offline-bert,offline-decoder} [--out DIR] [--seed N]
    piccolo env

Heavy imports happen after the mode is resolved, so quick mode's offline switches are set before
any Hugging Face library reads them.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="piccolo", description="Piccolo2 course tools")
    sub = p.add_subparsers(dest="cmd", required=True)

    q = sub.add_parser("quickstart", help="train + evaluate the recipe on data_samples (the main job)")
    q.add_argument("--mode", default="auto", choices=["quick", "full", "auto"])
    q.add_argument("--config", default=None, help="YAML config (default: configs/quickstart.yaml)")
    q.add_argument("overrides", nargs="*", help="key=value config overrides")

    t = sub.add_parser("train", help="train from a YAML config")
    t.add_argument("config")
    t.add_argument("overrides", nargs="*", help="key=value config overrides")
    t.add_argument("--mode", default=None, choices=["quick", "full", "auto"])

    e = sub.add_parser("eval", help="evaluate a model on the local benchmark")
    e.add_argument("model")
    e.add_argument("--benchmark", default="local", choices=["local"])
    e.add_argument("--dims", default="", help="comma-separated truncation dims, e.g. 224,128,64")
    e.add_argument("--output", default="runs/eval")
    e.add_argument("--data-dir", default=None, help="folder of eval files (default: data_samples/eval)")
    e.add_argument("--mode", default="auto", choices=["quick", "full", "auto"])

    d = sub.add_parser("data", help="data tools")
    dsub = d.add_subparsers(dest="data_cmd", required=True)
    v = dsub.add_parser("validate", help="check training data; exit 1 naming file/row/field on errors")
    v.add_argument("paths", nargs="+")
    v.add_argument("--root", default=None)
    v.add_argument("--batch-size", type=int, default=None)
    v.add_argument("--neg-num", type=int, default=0)

    m = dsub.add_parser("mine", help="mine hard negatives for retrieval data from a rank window")
    m.add_argument("model", help="a SentenceTransformer folder, or a backbone (offline-bert, hub name)")
    m.add_argument("in_path")
    m.add_argument("out_path")
    m.add_argument("--range-min", type=int, default=50, help="first rank used (report: 50)")
    m.add_argument("--range-max", type=int, default=100, help="rank bound, exclusive (report: 100)")
    m.add_argument("--num-negatives", type=int, default=3)
    m.add_argument("--relative-margin", type=float, default=0.05)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--mode", default="auto", choices=["quick", "full", "auto"])

    b = sub.add_parser("backbone", help="offline backbones")
    bsub = b.add_subparsers(dest="backbone_cmd", required=True)
    bb = bsub.add_parser("build", help="build an offline backbone folder")
    bb.add_argument("name", choices=["offline-bert", "offline-decoder"])
    bb.add_argument("--out", default=None)
    bb.add_argument("--seed", type=int, default=0)

    sub.add_parser("env", help="print versions, device, online/offline, available backbones")
    return p


def _cmd_env() -> int:
    from .runtime import environment

    for key, value in environment().items():
        print(f"{key:>22}: {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # key=value overrides may come after options (`--mode quick epochs=1`), which argparse leaves over
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if x.startswith("-") or "=" not in x or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    from . import runtime

    if args.cmd == "env":
        return _cmd_env()
    if getattr(args, "mode", None):
        runtime.setup(args.mode)
    if args.cmd == "quickstart":
        from .pipeline import quickstart

        result = quickstart(args.mode, args.config, args.overrides)
        return 0 if result["finetuned"]["average"] > result["untrained"]["average"] else 1
    if args.cmd == "train":
        from .training import load_config, train

        cfg = load_config(args.config, args.overrides)
        if args.mode is None:
            runtime.setup(cfg.mode)
        final = train(cfg)
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"saved: {final}")
        return 0
    if args.cmd == "eval":
        from sentence_transformers import SentenceTransformer

        from .backbones import DATA_SAMPLES
        from .evaluation import evaluate_model, local_tasks
        from .reporting import format_table

        model = SentenceTransformer(args.model)
        tasks = local_tasks(args.data_dir or DATA_SAMPLES / "eval")
        dims = [None] + [int(x) for x in args.dims.split(",") if x.strip()]
        name = args.model.rstrip("/").replace("/", "__")
        print(format_table([evaluate_model(model, tasks, args.output, model_name=name, truncate_dim=d) for d in dims]))
        return 0
    if args.cmd == "data" and args.data_cmd == "mine":
        from .mining import mine_file

        print(mine_file(args.model, args.in_path, args.out_path, range_min=args.range_min,
                        range_max=args.range_max, num_negatives=args.num_negatives,
                        relative_margin=args.relative_margin, seed=args.seed))
        return 0
    if args.cmd == "data":
        from .data import DataError, load_train_sets, summary

        try:
            sets = load_train_sets(args.paths, root=args.root, neg_num=args.neg_num, batch_size=args.batch_size)
        except DataError as e:
            print(e, file=sys.stderr)
            return 1
        print(summary(sets))
        return 0
    if args.cmd == "backbone":
        runtime.set_offline(True)
        from .backbones import build_offline_bert, build_offline_decoder

        build = build_offline_bert if args.name == "offline-bert" else build_offline_decoder
        print(build(args.out, seed=args.seed))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
