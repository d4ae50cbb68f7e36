"""When one machine is outgrown: the same vectors in Qdrant, a vector database with a server and a cluster mode.

An index folder (:mod:`.store`) is one process's flat index: it fits one machine's memory and answers one
machine's queries. Past that (tens of millions of vectors, replication, updates while serving, filtering by
payload), the vectors go into a vector database. Qdrant is one: ``docker run -p 6333:6333 qdrant/qdrant`` (one
server) or its distributed mode (shards and replicas over several nodes), with the Python client
``qdrant-client``. The client also has a *local mode* (``QdrantClient(path=...)`` or ``":memory:"``) that
runs in-process, stores the collection on disk and answers the same calls: what the tests use.

The export keeps the index's precision as Qdrant's own quantization: ``int8`` -> scalar quantization,
``binary`` -> binary quantization, both with rescoring (``oversampling`` = the index's multiplier) against the
float vectors Qdrant keeps on disk. Local mode accepts these settings and ignores them (it scans the float
vectors exactly); a server applies them.

Introduced in notebooks/11_search.ipynb.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .index import VectorIndex, int8_dequantize
from .store import IndexFolderError, SearchIndex


def client_module():
    """``qdrant_client``, or one line saying how to install it (the ``[search]`` extra)."""
    try:
        import qdrant_client
    except ImportError:
        from ..errors import MissingPackage

        raise MissingPackage("the Qdrant export needs qdrant-client: pip install 'piccolo-course[search]'") from None
    return qdrant_client


def float_vectors(vectors: VectorIndex) -> np.ndarray:
    """(n, dims) float32 vectors an index can give back: its own (float32, int8 bucket centres) or the
    rescoring vectors a binary index keeps; a binary index without them has only bits, which is an error."""
    if vectors.precision in ("float32", "int8"):
        return vectors.index.reconstruct_n(0, vectors.count)
    if vectors.rescore == "float32":
        return np.asarray(vectors.rescore_vectors, dtype=np.float32)
    if vectors.rescore == "int8":
        return int8_dequantize(np.asarray(vectors.rescore_vectors), vectors.ranges)
    raise IndexFolderError(f"a binary index with rescore={vectors.rescore!r} keeps only sign bits; Qdrant needs float "
                           "vectors: build it with rescore float32 or int8")


def collection_settings(manifest: dict) -> dict[str, Any]:
    """``create_collection`` keyword arguments for an index's dims and precision."""
    models = client_module().models
    quantization = {
        "float32": None,
        "int8": models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8,
                                                                                 always_ram=True)),
        "binary": models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True)),
    }[manifest["precision"]]
    return {"vectors_config": models.VectorParams(size=manifest["dims"], distance=models.Distance.COSINE,
                                                  on_disk=quantization is not None),
            "quantization_config": quantization}


def search_params(manifest: dict) -> Any:
    """Query-time settings: rescoring with ``oversampling`` = the index's multiplier (None for float32)."""
    models = client_module().models
    if manifest["precision"] == "float32":
        return None
    return models.SearchParams(quantization=models.QuantizationSearchParams(
        rescore=True, oversampling=float(max(manifest["rescore_multiplier"], 1))))


def export(index: SearchIndex, client: Any, collection: str, *, batch_size: int = 1024) -> int:
    """Put an index folder's vectors into a Qdrant collection (recreated); returns the number of points.

    Point ids are the index's rows (Qdrant ids are integers or UUIDs); the corpus id, and the text when the
    folder has it, go into each point's payload as ``id`` and ``text``.
    """
    vectors = float_vectors(index.vectors)  # (n, dims)
    if client.collection_exists(collection):
        client.delete_collection(collection)
    client.create_collection(collection, **collection_settings(index.manifest))
    payload = [{"id": i} if index.texts is None else {"id": i, "text": t}
               for i, t in zip(index.ids, index.texts or index.ids)]
    client.upload_collection(collection, vectors=vectors, payload=payload, ids=list(range(len(vectors))),
                             batch_size=batch_size)
    return int(client.count(collection).count)


def search(client: Any, collection: str, manifest: dict, query_embeddings: np.ndarray,
           top_k: int = 10) -> list[list[tuple[str, float]]]:
    """Per query, ``top_k`` (corpus id, score) from Qdrant; queries are full embeddings, cut to the prefix here."""
    from .index import prefix

    q = prefix(np.atleast_2d(np.asarray(query_embeddings, dtype=np.float32)), manifest["dims"])
    out = []
    for row in q:
        found = client.query_points(collection, query=row.tolist(), limit=top_k, with_payload=True,
                                    search_params=search_params(manifest)).points
        out.append([(p.payload["id"], float(p.score)) for p in found])
    return out
