"""Solutions of notebooks/11_search.ipynb's exercises (explained in 11_search.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

import numpy as np

from piccolo_lib.search import VectorIndex, prefix, recall_at_k

# 1. 1792 / 4 = 448 dims, one byte each, for 10 million passages
answer_1 = 10_000_000 * 448 / 2**30

# 2. each bit differs with probability theta / pi: 384 bits x (60 / 180)
answer_2 = 384 * 60 / 180

# 3. the 20 Hamming-nearest codes at 1/8 of the fine-tuned model's dims, no rescoring
d8 = ft["docs"].shape[1] // 8
shortlist, _ = VectorIndex.build(ft["docs"], d8, "binary", rescore="none").search(ft["queries"], 20)
answer_3 = recall_at_k(shortlist, relevant, 20)


# 4. Hamming shortlist of k * m, rescored against int8 bucket centres
def binary_int8_search(Q, X, dims, k, m):
    q, x = prefix(Q, dims), prefix(X, dims)                            # (nq, d), (n, d) unit rows
    qb, xb = np.packbits(q > 0, axis=1), np.packbits(x > 0, axis=1)    # sign codes
    dist = np.stack([np.bitwise_count(row ^ xb).sum(1) for row in qb])  # (nq, n) Hamming distances
    cand = np.argsort(dist, axis=1, kind="stable")[:, :k * m]          # (nq, k m) shortlist
    lo, hi = x.min(0), x.max(0)
    step = (hi - lo) / 255
    codes = np.clip(np.floor((x - lo) / step), 0, 255) - 128           # int8 codes (as int), min-max ranges
    centres = lo + (codes + 128.5) * step                              # bucket centres
    scores = np.einsum("qd,qcd->qc", q, centres[cand])                 # float query . centres, shortlist only
    return np.take_along_axis(cand, np.argsort(-scores, axis=1, kind="stable")[:, :k], 1)
