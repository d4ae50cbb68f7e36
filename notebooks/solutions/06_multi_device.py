"""Solutions of notebooks/06_multi_device.ipynb's exercises (explained in 06_multi_device.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. bf16 weights (2) + bf16 gradients (2) + 12 optimizer bytes / 16 GPUs
answer_1 = 2 + 2 + 12 / 16

# 2. every rank's positives and hard negatives: 16 ranks x 32 rows x (1 positive + 3 negatives)
answer_2 = 16 * 32 * (1 + 3)

# 3. GPUs x grad_accum batches of one dataset per step, each of batch_size rows
answer_3 = (4 * 2, 4 * 2 * 16)


# 4. this rank's queries against every rank's positives; the target is shifted by the rows of the ranks before
def gathered_infonce(qs, ps, rank, temperature=0.05):
    q = F.normalize(qs[rank], dim=-1)
    p = F.normalize(torch.cat(ps), dim=-1)  # (sum of B, D): what the all-gather provides
    offset = sum(x.shape[0] for x in qs[:rank])
    return F.cross_entropy(q @ p.T / temperature, torch.arange(q.shape[0]) + offset)
