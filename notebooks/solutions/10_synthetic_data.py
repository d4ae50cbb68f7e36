"""Solutions of notebooks/10_synthetic_data.ipynb's exercises (explained in 10_synthetic_data.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. fenced JSON is unwrapped (kept); "OK" has no Chinese; an extra field is ignored (kept); null is no text
answer_1 = [None, "not_chinese", None, "missing_field"]

# 2. top_k = 1 keeps the triples whose positive ranks first (rank 0)
answer_2 = sum(1 for r in ranks if r == 0)

# 3. an example's id hashes its domain, task and index, never the list of domains: all old ids stay
answer_3 = len(planned)


# 4. the number of passages scoring strictly higher than the positive
def positive_rank(scores, positive):
    pos_score = scores.gather(1, positive[:, None])  # (n, 1)
    return (scores > pos_score).sum(1).tolist()
