"""Solutions of notebooks/07_cmteb_eval.ipynb's exercises (explained in 07_cmteb_eval.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""


def best_f1(scores, labels):  # precision and recall of "the first k pairs are positive"
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp, k = np.cumsum(y == 1), np.arange(1, len(y) + 1)
    f1 = 2 * tp / (k + (y == 1).sum())  # 2PR/(P+R) with P = tp/k, R = tp/positives
    return f1[:-1][s[:-1] != s[1:]].max()  # only cuts between distinct scores, never after the last pair


# 1. nDCG@3: DCG of the top 3 over the ideal DCG of the top 3, averaged over queries
def ndcg_at(ranking, gains, k):
    dcg = sum(gains.get(d, 0) / np.log2(r + 2) for r, d in enumerate(ranking[:k]))
    ideal = sum(g / np.log2(r + 2) for r, g in enumerate(sorted(gains.values(), reverse=True)[:k]))
    return dcg / ideal


answer_1 = np.mean([ndcg_at(rankings[q["id"]], rel[q["id"]], 3) for q in queries])

# 2. the best F1 over mteb's cuts
answer_2 = best_f1(sims["cosine"][0], labels)

# 3. the six category scores, each counted once
answer_3 = sum(REPORT_TABLE[c] for c in CATEGORIES) / 6


# 4. the share of the relevant passages found in the top k
def recall_at_k(ranking, relevant, k):
    return len(set(ranking[:k]) & set(relevant)) / len(relevant)
