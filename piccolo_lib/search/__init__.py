"""Search with a trained model: encode a corpus, index MRL prefixes at float32 / int8 / binary, query, measure.

Modules: ``corpus`` (the local retrieval task plus People's Daily distractors), ``encode`` (documents per second,
cached), ``index`` (faiss flat indexes, quantization, rescoring), ``store`` (the index folder), ``grid`` (the
trade-off measured), ``qdrant`` (the same vectors in a vector database). Introduced in notebooks/11_search.ipynb.
"""

from .corpus import SearchCorpus, benchmark_corpus, local_retrieval, news_distractors, read_corpus  # noqa: F401
from .encode import Encoded, encode, model_fingerprint  # noqa: F401
from .grid import FRACTIONS, format_grid, measure_cell, measure_grid, ndcg_at_k, recall_at_k  # noqa: F401
from .index import PRECISIONS, RESCORE, VectorIndex, bytes_per_vector, exact_search, prefix  # noqa: F401
from .build import index_corpus, load_search_model, search_folder  # noqa: F401
from .store import IndexFolderError, SearchIndex, load_index, read_manifest, save_index  # noqa: F401
