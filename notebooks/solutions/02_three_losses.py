"""Solutions of notebooks/02_three_losses.ipynb's exercises (explained in 02_three_losses.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. B positives + B x K hard negatives
answer_1 = 32 + 32 * 3

# 2. 5 is above 4 scores, 3 above 3, each 1 above the 0 (ties are not compared)
answer_2 = 4 + 3 + 2
answer_2_loss = math.log(1 + 9)  # every term exp(0) = 1

# 3. a row whose label appears n times gets at most 1/n: mean of log n over the 32 rows
answer_3 = (2 * 4 * math.log(4) + 8 * 3 * math.log(3)) / 32


# 4. queries -> passages and passages -> queries, averaged
def symmetric_infonce(q, p, temperature=0.05):
    sims = F.normalize(q, dim=-1) @ F.normalize(p, dim=-1).T / temperature  # (B, B) scaled cosines
    targets = torch.arange(q.shape[0])
    return (F.cross_entropy(sims, targets) + F.cross_entropy(sims.T, targets)) / 2
