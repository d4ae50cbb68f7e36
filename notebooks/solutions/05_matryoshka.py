"""Solutions of notebooks/05_matryoshka.ipynb's exercises (explained in 05_matryoshka.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. by symmetry each coordinate holds 1/672 of the squared norm
answer_1 = 96 / 672

# 2. block k (0-based) is covered by the prefixes 96 (k + 1), ..., 672: 7 - k of them
answer_2 = [7 - k for k in range(7)]

# 3. read off section 2's table (the first dim whose share of the full score is at least 0.95)
answer_3 = min(d for d in dims if scores["MRL"][d] >= 0.95 * scores["MRL"][full])


# 4. sum_d w_d loss(prefixes) / sum_d w_d
def weighted_mrl(loss_fn, dims, weights, q, p):
    return sum(w * loss_fn(q[:, :d], p[:, :d]) for d, w in zip(dims, weights)) / sum(weights)
