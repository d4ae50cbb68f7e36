"""The index folder: what ``piccolo index`` writes and ``piccolo search`` (or plain faiss + sentence-transformers) reads.

::

    my-index/
      manifest.json   model, dims of the model and of the prefix, precision, prompts, files, counts, versions
      index.faiss     the faiss index (faiss.read_index; binary: faiss.read_index_binary)
      ids.txt         one corpus id per line: line i is the index's row i
      corpus.jsonl    optional: {"id", "text"} per row, to print hits
      rescore.npy     binary with float32 / int8 rescoring: the prefixes (memory-mapped at search time)
      ranges.npy      int8 (the index's or the rescoring codes'): (2, dims) lower and upper bound per dim
      mean.npy        binary with centring: the corpus mean subtracted before taking signs

Every problem with a folder is one line naming the file and the field (:class:`IndexFolderError`).

Introduced in notebooks/11_search.ipynb.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .index import PRECISIONS, RESCORE, VectorIndex, faiss_module

FORMAT, FORMAT_VERSION = "piccolo-search-index", 1
REQUIRED = {"format": str, "format_version": int, "model": str, "full_dims": int, "dims": int, "precision": str,
            "index_file": str, "ids_file": str, "count": int, "rescore": str, "rescore_multiplier": int}


class IndexFolderError(UserError, ValueError):
    """An index folder that cannot be used: missing file or field, wrong value, or a model that does not fit."""


@dataclass
class SearchIndex:
    """A loaded index folder: the manifest, the vectors, and the corpus ids (and texts) of its rows."""

    folder: Path
    manifest: dict[str, Any]
    vectors: VectorIndex
    ids: list[str]
    texts: list[str] | None = None

    def search(self, query_embeddings: np.ndarray, top_k: int = 10) -> list[list[tuple[str, float]]]:
        """Per query, ``top_k`` (corpus id, score) pairs, best first.

        ``query_embeddings``: (nq, full_dims) rows from the manifest's model (the prefix is taken here).
        """
        q = np.asarray(query_embeddings, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.shape[1] != self.manifest["full_dims"]:
            raise IndexFolderError(
                f"{self.folder / 'manifest.json'}: query embeddings have {q.shape[1]} dims, but this index holds "
                f"{self.manifest['dims']}-dim prefixes of {self.manifest['full_dims']}-dim embeddings (field "
                f"'full_dims'); encode the queries with the model of field 'model': {self.manifest['model']}")
        rows, scores = self.vectors.search(q, top_k)
        return [[(self.ids[r], float(s)) for r, s in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)]

    def check_model(self, model: Any, name: str = "the model") -> None:
        """Raise :class:`IndexFolderError` unless ``model`` gives embeddings of the manifest's ``full_dims``."""
        width = model.get_embedding_dimension()
        if width != self.manifest["full_dims"]:
            raise IndexFolderError(
                f"{self.folder / 'manifest.json'}: field 'full_dims' is {self.manifest['full_dims']} but {name} gives "
                f"{width}-dim embeddings; query with the index's own model ({self.manifest['model']})")

    def query(self, model: Any, texts: list[str], top_k: int = 10) -> list[list[tuple[str, float]]]:
        """Encode ``texts`` with ``model`` (the manifest's query prompt, unit rows) and :meth:`search`."""
        self.check_model(model)
        prompt = self.manifest.get("query_prompt") or None
        return self.search(model.encode(list(texts), prompt=prompt, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False), top_k)


def save_index(folder: str | Path, vectors: VectorIndex, ids: list[str], *, model: str, full_dims: int,
               query_prompt: str = "", document_prompt: str = "", texts: list[str] | None = None,
               corpus: str = "") -> Path:
    """Write ``vectors`` and its row ids as an index folder (see the module docstring); returns the folder."""
    import sentence_transformers

    faiss = faiss_module()
    if len(ids) != vectors.count:
        raise ValueError(f"{len(ids)} ids for an index of {vectors.count} vectors")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write = faiss.write_index_binary if vectors.precision == "binary" else faiss.write_index
    write(vectors.index, str(folder / "index.faiss"))
    (folder / "ids.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    files = {"ranges_file": vectors.ranges, "mean_file": vectors.mean, "rescore_file": vectors.rescore_vectors}
    names = {"ranges_file": "ranges.npy", "mean_file": "mean.npy", "rescore_file": "rescore.npy"}
    for key, array in files.items():
        if array is not None:
            np.save(folder / names[key], np.asarray(array))
    if texts is not None:
        with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in zip(ids, texts))
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": model, "full_dims": full_dims,
        "dims": vectors.dims, "precision": vectors.precision, "metric": "cosine (unit rows, inner product)",
        "query_prompt": query_prompt, "document_prompt": document_prompt,
        "engine": "faiss", "engine_version": faiss.__version__, "index_file": "index.faiss",
        "ids_file": "ids.txt", "texts_file": "corpus.jsonl" if texts is not None else None, "count": vectors.count,
        "rescore": vectors.rescore, "rescore_multiplier": vectors.multiplier,
        **{k: (names[k] if v is not None else None) for k, v in files.items()},
        "code_bytes": vectors.code_bytes, "rescore_bytes": vectors.rescore_bytes,
        "corpus": corpus, "sentence_transformers": sentence_transformers.__version__,
    }
    tmp = folder / f".manifest.json.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(folder / "manifest.json")  # written last: a folder with a manifest is complete
    return folder


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The checked manifest of an index folder; any problem is one :class:`IndexFolderError` line."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise IndexFolderError(f"{folder}: no such folder (write an index with `piccolo index`)")
    if not path.is_file():
        raise IndexFolderError(f"{path}: missing; {folder} is not an index folder (write one with `piccolo index`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IndexFolderError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise IndexFolderError(f"{path}: expected a JSON object")
    for key, kind in REQUIRED.items():
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise IndexFolderError(f"{path}: field '{key}' is {manifest.get(key)!r}; expected {kind.__name__}")
    checks = [("format", manifest["format"] == FORMAT, repr(FORMAT)),
              ("format_version", manifest["format_version"] == FORMAT_VERSION, str(FORMAT_VERSION)),
              ("precision", manifest["precision"] in PRECISIONS, f"one of {PRECISIONS}"),
              ("rescore", manifest["rescore"] in RESCORE, f"one of {RESCORE}"),
              ("dims", 0 < manifest["dims"] <= manifest["full_dims"], f"1..full_dims ({manifest['full_dims']})")]
    for key, ok, expected in checks:
        if not ok:
            raise IndexFolderError(f"{path}: field '{key}' is {manifest[key]!r}; expected {expected}")
    return manifest


def load_index(folder: str | Path, *, mmap: bool = True) -> SearchIndex:
    """Load an index folder written by :func:`save_index`; rescoring vectors memory-mapped when ``mmap``."""
    faiss = faiss_module()
    folder = Path(folder)
    m = read_manifest(folder)

    def file(key: str) -> Path:
        path = folder / m[key]
        if not path.is_file():
            raise IndexFolderError(f"{path}: missing (named by field '{key}' of {folder / 'manifest.json'})")
        return path

    try:
        read = faiss.read_index_binary if m["precision"] == "binary" else faiss.read_index
        index = read(str(file("index_file")))
    except RuntimeError as err:
        raise IndexFolderError(f"{folder / m['index_file']}: faiss cannot read it ({str(err).splitlines()[0]})") from None
    ids = file("ids_file").read_text(encoding="utf-8").splitlines()
    width = 8 * -(-m["dims"] // 8) if m["precision"] == "binary" else m["dims"]  # binary: whole bytes of bits
    if index.ntotal != m["count"] or len(ids) != m["count"] or index.d != width:
        raise IndexFolderError(f"{folder / 'manifest.json'}: field 'count' {m['count']} and 'dims' {m['dims']} do not "
                               f"match the files ({index.ntotal} vectors of {index.d} dims, {len(ids)} ids)")
    arrays = {k: np.load(file(k), mmap_mode="r" if mmap and k == "rescore_file" else None)
              for k in ("ranges_file", "mean_file", "rescore_file") if m.get(k)}
    vectors = VectorIndex(index=index, dims=m["dims"], precision=m["precision"], rescore=m["rescore"],
                          multiplier=m["rescore_multiplier"], ranges=arrays.get("ranges_file"),
                          mean=arrays.get("mean_file"), rescore_vectors=arrays.get("rescore_file"))
    if m["precision"] == "binary" and m["rescore"] in ("float32", "int8") and vectors.rescore_vectors is None:
        raise IndexFolderError(f"{folder / 'manifest.json'}: field 'rescore' is {m['rescore']!r} but field "
                               "'rescore_file' names no file")
    texts = None
    if m.get("texts_file"):
        rows = [json.loads(line) for line in file("texts_file").read_text(encoding="utf-8").splitlines() if line]
        texts = [r["text"] for r in rows]
    return SearchIndex(folder=folder, manifest=m, vectors=vectors, ids=ids, texts=texts)
