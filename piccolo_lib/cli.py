"""The ``piccolo`` command.

    piccolo quickstart [--mode quick|full|auto] [--backbone e5-small|offline-bert|...] [key=value ...]
    piccolo train CONFIG.yaml [key=value ...]
    piccolo eval MODEL [--benchmark local|cmteb|cmteb-legacy] [--tasks T,...] [--dims 224,128,64]
                 [--output DIR] [--data-dir DIR] [--prompts FILE.json] [--zero-shot] [--distractors N] [--no-real]
    piccolo report RESULTS_DIR [--benchmark auto|local|cmteb|cmteb-legacy] [--format md|json|csv] [--models M,...]
    piccolo cmteb download --to DIR [--benchmark cmteb|cmteb-legacy] [--tasks T,...]
    piccolo cmteb sample-mirror --to DIR
    piccolo data validate PATH_OR_META_LIST ... [--root DIR] [--batch-size N]
    piccolo data mine MODEL IN.jsonl OUT.jsonl [--range-min 50 --range-max 100]
    piccolo data synth OUT_DIR [--url URL --model NAME | --backend transformers --model NAME] [...]
    piccolo backbone build {e5-small,offline-bert,offline-decoder} [--out DIR] [--seed N]
    piccolo course [--mode quick|full|auto] [--only 03,04] [--output build/notebooks] [--solutions] [--strip] [--publish]
    piccolo env
    piccolo merge A B [C ...] OUT [--weights 0.3,0.7] [--method linear|slerp] [--keep-from N]
    piccolo index MODEL OUT_DIR [--corpus benchmark|FILE.jsonl] [--news N|all] [--dims D]
                  [--precision float32|int8|binary] [--rescore float32|int8|bits|none] [--multiplier 4] [--no-center]
    piccolo search INDEX_DIR QUERY [QUERY ...] [--top-k 10] [--model MODEL]

Heavy imports happen after the mode is resolved, so quick mode's offline switches are set before
any Hugging Face library reads them.
"""

from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="piccolo", description="Piccolo2 course tools",
                                epilog="A mistake in a config key or value is one line on stderr and exit status 2 (as "
                                       "for a bad option); in data or a name, one line and exit status 1; "
                                       "--debug (anywhere on the line) shows the Python traceback instead.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="cmd", required=True)

    q = sub.add_parser("quickstart", help="train + evaluate the recipe on data_samples (the main job)")
    q.add_argument("--mode", default="auto", choices=["quick", "full", "auto"])
    q.add_argument("--config", default=None, help="YAML config (default: configs/quickstart.yaml, e5-small)")
    q.add_argument("--backbone", default=None,
                   help="e5-small (default, pretrained), offline-bert (toy, fastest: its own config), minilm, a folder")
    q.add_argument("overrides", nargs="*", help="key=value config overrides")

    t = sub.add_parser("train", help="train from a YAML config")
    t.add_argument("config")
    t.add_argument("overrides", nargs="*", help="key=value config overrides")
    t.add_argument("--mode", default=None, choices=["quick", "full", "auto"])

    _add_eval_parsers(sub)

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

    from .synth.cli import add_parser as add_synth_parser  # light: no torch or HF import

    add_synth_parser(dsub)

    b = sub.add_parser("backbone", help="offline backbones")
    bsub = b.add_subparsers(dest="backbone_cmd", required=True)
    bb = bsub.add_parser("build", help="build an offline backbone folder")
    bb.add_argument("name", choices=["e5-small", "offline-bert", "offline-decoder"])
    bb.add_argument("--out", default=None)
    bb.add_argument("--seed", type=int, default=0)

    co = sub.add_parser("course", help="execute the notebooks with papermill; HTML index with timings")
    co.add_argument("--mode", default="auto", choices=["quick", "full", "auto"])
    co.add_argument("--only", default=None, help="notebook numbers, e.g. 03,04 (default: all)")
    co.add_argument("--output", default="build/notebooks")
    co.add_argument("--timeout", type=int, default=None, help="seconds per cell (default 900)")
    co.add_argument("--solutions", action="store_true",
                    help="fill in every exercise answer from notebooks/solutions/ (the tests do)")
    co.add_argument("--strip", action="store_true", help="strip outputs and widget state from the notebooks, run nothing")
    co.add_argument("--publish", action="store_true",
                    help="execute in quick mode into docs/course/ (the committed pages; make pages)")

    sub.add_parser("env", help="print versions, device, online/offline, available backbones")
    _add_merge_parser(sub)
    _add_search_parsers(sub)
    return p


def _add_search_parsers(sub: argparse._SubParsersAction) -> None:
    """``piccolo index`` and ``piccolo search`` (piccolo_lib.search, notebooks/11_search.ipynb)."""
    ix = sub.add_parser("index", help="encode a corpus and write a vector index folder (MRL prefix, float32/int8/binary)")
    ix.add_argument("model", help="a SentenceTransformer folder, a hub name, or e5-small/offline-bert")
    ix.add_argument("out", help="the index folder to write")
    ix.add_argument("--corpus", default="benchmark",
                    help="benchmark (local retrieval corpus + People's Daily paragraphs) or a JSONL file of {id, text}")
    ix.add_argument("--news", default="all", help="benchmark: People's Daily paragraphs to add, a number or all")
    ix.add_argument("--news-min-chars", type=int, default=20, help="benchmark: 20 gives 14,394 paragraphs, 1 gives 18,994")
    ix.add_argument("--dims", type=int, default=None, help="keep this prefix of the embedding (default: all of it)")
    ix.add_argument("--precision", default="float32", choices=["float32", "int8", "binary"])
    ix.add_argument("--rescore", default="float32", choices=["float32", "int8", "bits", "none"],
                    help="binary: what the Hamming candidates are rescored against (float32/int8: kept on disk)")
    ix.add_argument("--multiplier", type=int, default=4, help="binary: candidates per result rescored (top_k x this)")
    ix.add_argument("--center", action=argparse.BooleanOptionalAction, default=True,
                    help="binary: signs of x minus the corpus mean (default; --no-center: signs of x, as quantize_embeddings)")
    ix.add_argument("--batch-size", type=int, default=32)
    ix.add_argument("--max-seq-length", type=int, default=None, help="tokens per text (default: the model's own)")
    ix.add_argument("--no-texts", action="store_true", help="do not copy the texts into the folder (corpus.jsonl)")
    ix.add_argument("--seed", type=int, default=0, help="benchmark: which paragraphs when --news is a number")
    ix.add_argument("--device", default=None)
    ix.add_argument("--mode", default="auto", choices=["quick", "full", "auto"])
    se = sub.add_parser("search", help="query an index folder written by piccolo index")
    se.add_argument("index")
    se.add_argument("queries", nargs="+")
    se.add_argument("--top-k", type=int, default=10)
    se.add_argument("--model", default=None, help="query with this model instead of the manifest's (same dims)")
    se.add_argument("--device", default=None)
    se.add_argument("--mode", default="auto", choices=["quick", "full", "auto"])


def _cmd_search(args: argparse.Namespace) -> int:
    """``index`` and ``search``: a bad folder, corpus or model is one line (UserError, answered by main)."""
    from .search.build import index_corpus, search_folder

    if args.cmd == "index":
        news = None if args.news == "all" else int(args.news)
        summary = index_corpus(args.model, args.out, corpus=args.corpus, news=news, news_min_chars=args.news_min_chars,
                               dims=args.dims, precision=args.precision, rescore=args.rescore,
                               multiplier=args.multiplier, center=args.center, batch_size=args.batch_size,
                               max_seq_length=args.max_seq_length, keep_texts=not args.no_texts, seed=args.seed,
                               device=args.device)
        print(f"indexed {summary['documents']:,} documents ({summary['corpus']}) at {summary['docs_per_s']:.1f} doc/s; "
              f"{summary['dims']} of {summary['full_dims']} dims, {summary['precision']}: "
              f"{summary['code_bytes'] / 2**20:.2f} MiB of codes in memory"
              + (f", {summary['rescore_bytes'] / 2**20:.2f} MiB of rescoring vectors on disk" if summary["rescore_bytes"] else "")
              + f"; built in {summary['build_s']:.2f} s -> {summary['folder']}")
        return 0
    index, hits = search_folder(args.index, args.queries, top_k=args.top_k, model=args.model, device=args.device)
    text = dict(zip(index.ids, index.texts)) if index.texts else {}
    for query, found in zip(args.queries, hits):
        print(f"query: {query}")
        for rank, (doc_id, score) in enumerate(found, 1):
            snippet = text.get(doc_id, "")[:60].replace("\n", " ")
            print(f"{rank:>3}. {score:8.4f}  {doc_id}  {snippet}")
    return 0


def _add_merge_parser(sub: argparse._SubParsersAction) -> None:
    """``piccolo merge A B [C ...] OUT`` (piccolo_lib.merging, notebooks/08_ablation.ipynb)."""
    mg = sub.add_parser("merge", help="merge sentence-transformers models of one architecture (average or slerp)")
    mg.add_argument("paths", nargs="+", metavar="MODEL ... OUT", help="two or more model folders, then the output folder")
    mg.add_argument("--weights", default=None, help="comma-separated, one per model, e.g. 0.3,0.7 (default equal; normalised)")
    mg.add_argument("--method", default="linear", choices=["linear", "slerp"])
    mg.add_argument("--keep-from", type=int, default=None, metavar="N",
                    help="when the models differ in pooling, head or prompts: keep model N's (1 = the first); "
                         "default: refuse such models")


def _cmd_merge(args: argparse.Namespace) -> int:
    from .model.merging import MergeError, merge_models

    if len(args.paths) < 3:
        print("piccolo merge: need at least two models and an output folder", file=sys.stderr)
        return 1
    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
        out = merge_models(args.paths[:-1], args.paths[-1], weights, args.method, keep_from=args.keep_from)
    except MergeError as err:
        print(f"piccolo merge: {err}", file=sys.stderr)
        return 1
    print(f"merged ({args.method}): {out}")
    return 0


def _cmd_env() -> int:
    from .runtime import environment

    for key, value in environment().items():
        print(f"{key:>22}: {value}")
    return 0


def _add_eval_parsers(sub: argparse._SubParsersAction) -> None:
    """``eval``, ``report`` and ``cmteb`` (notebooks/07_cmteb_eval.ipynb)."""
    e = sub.add_parser("eval", help="evaluate a model with mteb: local benchmark or C-MTEB, per MRL dim")
    e.add_argument("model", help="a SentenceTransformer folder, a hub name, or offline-bert/minilm")
    e.add_argument("--benchmark", default="local", choices=["local", "cmteb", "cmteb-legacy"])
    e.add_argument("--tasks", default="", help="comma-separated task names (default: the whole benchmark)")
    e.add_argument("--dims", default="", help="comma-separated truncation dims, e.g. 1792,1280,768,512,256")
    e.add_argument("--output", default="runs/eval", help="mteb result cache; a re-run computes only what is missing")
    e.add_argument("--data-dir", default=None,
                   help="local: folder of eval files (default data_samples/eval); cmteb: offline mirror folder")
    e.add_argument("--name", default=None, help="model name in the results (default: from MODEL)")
    e.add_argument("--prompts", default=None, help="JSON file of sentence-transformers prompts (query, document, "
                                                  "task name or type -> text) added to the model's own")
    e.add_argument("--zero-shot", action=argparse.BooleanOptionalAction, default=None,
                   help="also zero-shot classification by label retrieval (default: on for local)")
    e.add_argument("--distractors", type=int, default=None,
                   help="local: People's Daily passages added to the retrieval corpus (default: the quickstart's)")
    e.add_argument("--real", action=argparse.BooleanOptionalAction, default=True,
                   help="local: also the real public task(s), reported apart from the average (default: on)")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device", default=None)
    e.add_argument("--mode", default="auto", choices=["quick", "full", "auto"])

    r = sub.add_parser("report", help="C-MTEB table from mteb result files (any mteb version)")
    r.add_argument("results_dir")
    r.add_argument("--benchmark", default="auto", choices=["auto", "local", "cmteb", "cmteb-legacy"],
                   help="auto: local if the folder holds local-benchmark results, else cmteb")
    r.add_argument("--format", default="md", choices=["md", "json", "csv"])
    r.add_argument("--models", default="", help="comma-separated: keep models whose name contains one of these")
    r.add_argument("--output", default=None, help="write to this file instead of stdout")

    c = sub.add_parser("cmteb", help="offline C-MTEB data")
    csub = c.add_subparsers(dest="cmteb_cmd", required=True)
    dl = csub.add_parser("download", help="mirror the datasets of the benchmark's tasks (needs the hub)")
    dl.add_argument("--to", required=True)
    dl.add_argument("--benchmark", default="cmteb-legacy", choices=["cmteb", "cmteb-legacy"],
                    help="cmteb-legacy (default) holds all 31 tasks of cmteb plus the 4 legacy ones")
    dl.add_argument("--tasks", default="")
    dl.add_argument("--force", action="store_true", help="download again tasks already mirrored")
    sm = csub.add_parser("sample-mirror", help="a tiny mirror of 6 real tasks filled with data_samples (try the offline path)")
    sm.add_argument("--to", required=True)


def _cmd_evaluation(args: argparse.Namespace) -> int:
    """``eval``, ``report`` and ``cmteb``: errors the user can fix are one line on stderr, exit 1."""
    import json
    from pathlib import Path

    from .evaluate.benchmarks import evaluate_benchmark
    from .evaluate.cmteb import benchmark_tasks
    from .data import DataError
    from .evaluate.mirror import download, sample_mirror
    from .evaluate.reporting import build_reports, render

    names = [x.strip() for x in getattr(args, "tasks", "").split(",") if x.strip()] or None
    try:
        if args.cmd == "cmteb" and args.cmteb_cmd == "download":
            for path in download(args.to, benchmark_tasks(args.benchmark, names), force=args.force):
                print(f"mirrored {path}")
            return 0
        if args.cmd == "cmteb":
            print(f"sample mirror of {sample_mirror(args.to)} in {args.to}")
            return 0
        if args.cmd == "report":
            root = Path(args.results_dir)
            benchmark = args.benchmark
            if benchmark == "auto":
                benchmark = "local" if next(root.rglob("PiccoloLocal*.json"), None) else "cmteb"
            models = [m.strip() for m in args.models.split(",") if m.strip()] or None
            text = render(build_reports(root, benchmark, models), args.format, benchmark)
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
            else:
                print(text, end="" if text.endswith("\n") else "\n")
            return 0
        from sentence_transformers import SentenceTransformer

        from .model.backbones import OFFLINE_BACKBONES, resolve_backbone

        if args.distractors is not None and args.distractors < 0:  # before the model loads: a typo costs nothing
            raise ValueError(f"distractors must be >= 0, got {args.distractors}")
        model = SentenceTransformer(resolve_backbone(args.model), device=args.device)
        if args.prompts:
            prompts = json.loads(Path(args.prompts).read_text(encoding="utf-8"))
            if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
                raise ValueError(f"{args.prompts}: expected a JSON object of name -> prompt text")
            model.prompts.update(prompts)
        name = args.name or (args.model if args.model in OFFLINE_BACKBONES or not Path(args.model).exists()
                             else args.model.rstrip("/").replace("/", "__"))
        dims = [int(x) for x in args.dims.split(",") if x.strip()]
        if args.benchmark == "local":
            summaries = _eval_local(model, args, name, names, dims)
        else:
            evaluate_benchmark(model, args.benchmark, args.output, name=name, tasks=names, dims=dims,
                               data_dir=args.data_dir, zero_shot=args.zero_shot, batch_size=args.batch_size)
    except (ConnectionError, FileNotFoundError, ValueError, DataError) as err:  # mteb's own checks among them
        if args.debug:
            raise
        print(f"piccolo {args.cmd}: {err}", file=sys.stderr)
        return 1
    cached = name if "/" in name else f"local/{name}"  # how evaluation files the model
    reports = [r for r in build_reports(args.output, args.benchmark, tasks=names) if r.model == cached]
    print(render(reports, "md", args.benchmark, names))
    if args.benchmark == "local":
        from .evaluate.real import format_side_by_side

        print("\nSide by side (the real task is never in the average):\n" + format_side_by_side(summaries))
    return 0


def _eval_local(model, args: argparse.Namespace, name: str, names: list[str] | None, dims: list[int]) -> list[dict]:
    """``piccolo eval --benchmark local``: the quickstart's evidence (local tasks with news distractors, the real
    task and its zero-shot twin; ``--zero-shot``, default on, adds the local classification's twin too)."""
    from pathlib import Path

    from .evaluate.local import NEWS_DISTRACTORS
    from .evaluate.run import evaluate_model, reuse_embeddings, zero_shot_task
    from .model.backbones import DATA_SAMPLES
    from .pipeline import evidence_tasks

    distractors = NEWS_DISTRACTORS if args.distractors is None else args.distractors
    tasks = evidence_tasks(Path(args.data_dir) if args.data_dir else DATA_SAMPLES / "eval", distractors, args.real)
    if args.zero_shot is not False:
        tasks.append(zero_shot_task(tasks[0]))  # the local classification task (its labels have names)
    if names:
        unknown = sorted(set(names) - {t.metadata.name for t in tasks})
        if unknown:
            raise ValueError(f"{unknown} not in the local benchmark: {[t.metadata.name for t in tasks]}")
        tasks = [t for t in tasks if t.metadata.name in names]
    with reuse_embeddings(model):  # the dims and the zero-shot twins slice one encoding
        return [evaluate_model(model, tasks, args.output, model_name=name, truncate_dim=d, batch_size=args.batch_size)
                for d in [None, *dims]]


def _cmd_course(args: argparse.Namespace) -> int:
    from . import course, runtime

    try:
        paths = course.select(args.only)
        if args.strip:  # preparing the notebooks for publishing: no outputs, and the repository's own slug
            for p in paths:
                print(f"{p.name}: {'stripped' if course.strip(p) else 'clean'}")
            slug = course.git_remote_slug()
            if slug:
                for p in course.fill_slug(slug):
                    print(f"{p.name}: Colab repository set to {slug}")
            elif course.REPO_SLUG.startswith(course.PLACEHOLDER_OWNER + "/"):
                print(f"Colab: the repository is still {course.REPO_SLUG} (no GitHub remote 'origin' here); "
                      "add one (git remote add origin ...) and run piccolo course --strip again", file=sys.stderr)
            return 0
        if args.publish:  # the committed pages are always the offline quick run
            from .course import pages

            runtime.setup("quick")
            manifest = pages.publish(only=args.only, timeout=args.timeout or course.CELL_TIMEOUT_S)
            print(f"pages: {pages.PAGES / 'README.md'} ({manifest['total_s']:.0f} s)")
            return 0 if all(n["ok"] for n in manifest["notebooks"]) else 1
        mode = runtime.setup(args.mode)  # the kernels inherit quick mode's offline switches
        results = course.run_course(mode, args.only, args.output, timeout=args.timeout or course.CELL_TIMEOUT_S,
                                     solutions=args.solutions)
    except course.CourseError as e:
        if args.debug:
            raise
        print(f"piccolo course: {e}", file=sys.stderr)
        return 2
    return 0 if all(r["ok"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    """Run one ``piccolo`` command; a user's mistake (:class:`~piccolo_lib.errors.UserError`) is one line
    ``piccolo <command>: <message>`` on stderr and exit status 1, or 2 for a config key or value
    (:class:`~piccolo_lib.errors.ConfigError`, a usage error like argparse's); ``--debug`` (anywhere) shows the
    traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("PICCOLO_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    parser = _parser()
    # key=value overrides may come after options (`--mode quick epochs=1`), which argparse leaves over
    args, extra = parser.parse_known_args(argv)
    args.debug = debug
    from .errors import ConfigError, UserError

    command = " ".join(x for x in (args.cmd, getattr(args, "data_cmd", None), getattr(args, "cmteb_cmd", None),
                                   getattr(args, "backbone_cmd", None)) if x)
    try:
        return _run(parser, args, extra)
    except UserError as err:
        if debug:
            raise
        print(f"piccolo {command}: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> int:
    if args.cmd == "merge":  # `piccolo merge A B --method slerp OUT`: OUT after the options
        args.paths, extra = args.paths + [x for x in extra if not x.startswith("-")], [x for x in extra if x.startswith("-")]
    stray = [x for x in extra if x.startswith("-") or "=" not in x or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    from . import runtime

    if args.cmd == "env":
        return _cmd_env()
    if args.cmd == "course":
        return _cmd_course(args)
    if args.cmd == "merge":
        return _cmd_merge(args)
    if getattr(args, "mode", None):
        runtime.setup(args.mode)
    if args.cmd == "quickstart":
        from .pipeline import quickstart

        result = quickstart(args.mode, args.config, args.overrides, backbone=args.backbone)
        return 0 if result["finetuned"]["average"] > result["start"]["average"] else 1
    if args.cmd == "train":
        from .train.loop import load_config, train

        cfg = load_config(args.config, args.overrides)
        if args.mode is None:
            runtime.setup(cfg.mode)
        final = train(cfg)
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"saved: {final}")
        return 0
    if args.cmd in ("eval", "report", "cmteb"):
        return _cmd_evaluation(args)
    if args.cmd in ("index", "search"):
        return _cmd_search(args)
    if args.cmd == "data" and args.data_cmd == "synth":
        from .synth.cli import cli as synth_cli

        return synth_cli(args)
    if args.cmd == "data" and args.data_cmd == "mine":
        from .train.mining import mine_file

        print(mine_file(args.model, args.in_path, args.out_path, range_min=args.range_min,
                        range_max=args.range_max, num_negatives=args.num_negatives,
                        relative_margin=args.relative_margin, seed=args.seed))
        return 0
    if args.cmd == "data":
        from .data import load_train_sets, summary

        sets = load_train_sets(args.paths, root=args.root, neg_num=args.neg_num, batch_size=args.batch_size)
        print(summary(sets))
        return 0
    if args.cmd == "backbone":
        runtime.set_offline(True)
        from .model.backbones import build_offline_bert, build_offline_decoder

        if args.name == "e5-small":
            from .model.e5_small import build_e5_small

            print(build_e5_small(args.out))
            return 0
        build = build_offline_bert if args.name == "offline-bert" else build_offline_decoder
        print(build(args.out, seed=args.seed))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
