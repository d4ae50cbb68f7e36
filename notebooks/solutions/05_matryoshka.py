"""Solutions of notebooks/05_matryoshka.ipynb's exercises (explained in 05_matryoshka.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. by symmetry each coordinate holds 1/384 of the squared norm
answer_1 = 100 / 384

# 2. block k (0-based, coordinates 64 k .. 64 k + 63) is covered by every dim d > 64 k
answer_2 = [sum(d > 64 * k for d in (64, 128, 256, 512)) for k in range(512 // 64)]

# 3. read off section 2's table (the first dim whose share of the full score is at least 0.99)
answer_3 = min(d for d in dims if scores["MRL"][d] >= 0.99 * scores["MRL"][full])


# 4. sum_d w_d loss(prefixes) / sum_d w_d
def weighted_mrl(loss_fn, dims, weights, q, p):
    return sum(w * loss_fn(q[:, :d], p[:, :d]) for d, w in zip(dims, weights)) / sum(weights)
