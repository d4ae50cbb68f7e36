"""The published course (docs/course/): current with the notebooks, and the staleness check itself."""

import json
from pathlib import Path

from piccolo_lib import course, pages


def test_published_pages_are_current():
    problems = pages.stale()
    assert not problems, "docs/course/ is out of date; run `make pages` (piccolo course --publish):\n" + "\n".join(problems)


def test_published_pages_show_outputs_and_no_scratch_paths():
    manifest = pages.read_manifest()
    assert manifest and manifest["mode"] == "quick" and manifest["solutions"]
    for entry in manifest["notebooks"]:
        page = json.loads((pages.PAGES / entry["notebook"]).read_text(encoding="utf-8"))
        code = [c for c in page["cells"] if c["cell_type"] == "code"]
        assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 3, f"{entry['notebook']}: page has few outputs"
        text = json.dumps(page, ensure_ascii=False)
        assert "/tmp/piccolo-pages-" not in text, f"{entry['notebook']}: scratch path left in the page"


def test_published_pages_are_readable():
    """No absolute path of the machine that ran them, no widget (a frozen progress bar on GitHub), no library
    warning repeated, and every legend the plots helper placed outside the axes."""
    import re

    for page_path in sorted(pages.PAGES.glob("[0-9][0-9]_*.ipynb")):
        page = json.loads(page_path.read_text(encoding="utf-8"))
        text = json.dumps(page, ensure_ascii=False)
        leaks = sorted(set(re.findall(r"(?:/work|/root|/home/\w+|/tmp)/[\w./-]+", text)))
        assert not leaks, f"{page_path.name}: absolute paths {leaks[:5]}"
        outputs = [o for c in page["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), \
            f"{page_path.name}: a widget (a progress bar?) was saved"
        stderr = "".join("".join(o.get("text", "")) for o in outputs if o.get("name") == "stderr")
        warnings = re.findall(r"(?m)^.*(?:Warning|WARNING|\[transformers\]).*$", stderr)
        repeated = {w for w in warnings if warnings.count(w) > 1}
        assert not repeated, f"{page_path.name}: repeated warnings {sorted(repeated)[:3]}"
        assert "The tokenizer has new PAD/BOS/EOS tokens" not in text, page_path.name


def _notebook(path: Path, markdown: str) -> Path:
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": [markdown]},
                    {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["mode = 'quick'\n"],
                     "outputs": [], "execution_count": None}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def _publish_by_hand(folder: Path, nb: Path, ok: bool = True) -> None:
    (folder / nb.name).write_text(nb.read_text(encoding="utf-8"), encoding="utf-8")
    entry = {"notebook": nb.name, "source_sha256": pages.source_hash(nb), "ok": ok, "seconds": 1.0,
             "error": None if ok else "cell 3: ValueError: boom"}
    (folder / pages.MANIFEST).write_text(json.dumps({"notebooks": [entry]}), encoding="utf-8")


def test_stale_names_each_problem(tmp_path):
    src, site = tmp_path / "src", tmp_path / "site"
    src.mkdir(), site.mkdir()
    nb = _notebook(src / "01_demo.ipynb", "# Demo\n")
    assert pages.stale(site, [nb]) == [f"{site}: no MANIFEST.json"]

    _publish_by_hand(site, nb)
    assert pages.stale(site, [nb]) == []

    executed = json.loads(nb.read_text(encoding="utf-8"))  # outputs and execution counts do not count as a change
    executed["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    executed["cells"][1]["execution_count"] = 3
    nb.write_text(json.dumps(executed), encoding="utf-8")
    assert pages.stale(site, [nb]) == []

    _notebook(nb, "# Demo, reworded\n")
    assert pages.stale(site, [nb]) == ["01_demo.ipynb: changed since its page was published"]

    other = _notebook(src / "02_new.ipynb", "# New\n")
    assert pages.stale(site, [nb, other])[-1] == "02_new.ipynb: not published"

    _publish_by_hand(site, nb, ok=False)
    assert pages.stale(site, [nb]) == ["01_demo.ipynb: its published run failed (cell 3: ValueError: boom)"]


def test_tags_are_part_of_the_source_hash(tmp_path):
    nb = _notebook(tmp_path / "01_demo.ipynb", "# Demo\n")
    before = pages.source_hash(nb)
    data = json.loads(nb.read_text(encoding="utf-8"))
    data["cells"][1]["metadata"]["tags"] = []  # the parameters tag is what papermill injects into
    nb.write_text(json.dumps(data), encoding="utf-8")
    assert pages.source_hash(nb) != before


def test_tidy_removes_run_noise(tmp_path):
    scratch = tmp_path / "piccolo-pages-x"
    scratch.mkdir()
    executed = {"cells": [{"cell_type": "code", "source": [f"output_dir = '{scratch}/runs/01'\n"],
                           "metadata": {"papermill": {"duration": 1.2}, "execution": {"iopub.status.busy": "t"}},
                           "outputs": [], "execution_count": 1}],
                "metadata": {"papermill": {"start_time": "t0", "end_time": "t1", "duration": 3.0,
                                           "parameters": {"mode": "quick"}}, "widgets": {"state": {}}},
                "nbformat": 4, "nbformat_minor": 5}
    (scratch / "01.ipynb").write_text(json.dumps(executed), encoding="utf-8")
    pages._tidy(scratch / "01.ipynb", scratch, tmp_path / "01.ipynb")
    page = json.loads((tmp_path / "01.ipynb").read_text(encoding="utf-8"))
    assert page["cells"][0]["source"] == [f"output_dir = '{pages.SCRATCH}/runs/01'\n"]
    assert page["cells"][0]["metadata"] == {}
    assert page["metadata"] == {"papermill": {"parameters": {"mode": "quick"}}}


def test_every_notebook_is_selected_for_publishing():
    names = {p.name for p in course.select()}
    on_disk = {p.name for p in (pages.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert names == on_disk


def test_prose_never_disagrees_with_its_page():
    """Every decimal, percentage or large count a published page's markdown quotes is printed on that page (or is
    marked as a figure from the report or another source, or as an example): piccolo_lib.course.prose."""
    from piccolo_lib.course.prose import unbacked_numbers

    problems = [f"{p.name}: {x}" for p in sorted(pages.PAGES.glob("[0-9][0-9]_*.ipynb")) for x in unbacked_numbers(p)]
    assert not problems, f"{len(problems)} typed numbers the page does not print:\n" + "\n".join(problems)


def test_the_prose_check_catches_a_drifted_number_and_accepts_rounding(tmp_path):
    from piccolo_lib.course.prose import unbacked_numbers

    def page(markdown: str, printed: str) -> dict:
        return {"cells": [{"cell_type": "markdown", "source": [markdown], "metadata": {}},
                          {"cell_type": "code", "source": ["print(x)"], "metadata": {},
                           "outputs": [{"output_type": "stream", "name": "stdout", "text": [printed]}]}]}

    assert unbacked_numbers(page("LoRA scored 33.73 here.", "LoRA 33.03")) == [
        "cell 0: '33.73' is in no output of the page: 'LoRA scored 33.73 here.'"]
    assert unbacked_numbers(page("LoRA scored 33.0 and kept 6.0%.", "LoRA 33.03, share 0.0604")) == []
    assert unbacked_numbers(page("The report's average is 70.95; e.g. a 3.5 vs 4.5 pair.", "nothing")) == []
    assert unbacked_numbers(page("It read 4,700 characters.", "3,913 characters"))  # a count that drifted
