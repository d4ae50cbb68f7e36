"""Solutions of notebooks/01_data_formats.ipynb's exercises (explained in 01_data_formats.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. floor(rows x repeat / (B x W)) per dataset, summed
answer_1 = sum(n * (3 if name == "reranking" else 1) // (16 * 4) for name, n in zip(names, sizes))

# 2. p_d proportional to n_d ** (1/2); the two cosent families are 730k and 440k rows
answer_2 = (math.sqrt(730_000) + math.sqrt(440_000)) / sum(math.sqrt(n) for n in fam_rows)

# 3. ranks 50..79 of an 80-passage corpus; this run: every query, ranks range_min..min(range_max, N) - 1
answer_3 = 80 - 50
answer_3_total = len(retrieval_rows) * (min(range_max, len(corpus)) - range_min)


# 4. rank every passage, keep the window, drop the positive
def window_negatives(scores, positives, range_min, range_max):
    order = scores.argsort(dim=1, descending=True)[:, range_min:range_max]  # (Q, window) passage indices
    return [[j for j in row.tolist() if j != int(pos)] for row, pos in zip(order, positives)]
