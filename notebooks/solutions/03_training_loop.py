"""Solutions of notebooks/03_training_loop.ipynb's exercises (explained in 03_training_loop.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

import math

import torch

# 1. ceil(0.1 * 40) = 4 warmup steps; the 10th step runs after 9 scheduler steps, in the decay: (40 - 9) / (40 - 4)
answer_1 = (40 - 9) / (40 - math.ceil(0.1 * 40))

# 2. 16 queries + 16 positives + 16 negatives, 3 of the negatives being positives already
answer_2 = 16 + 16 + 16 - 3


# 3. one global norm over every gradient; the factor never exceeds 1
def clip_factor(grads, max_norm):
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    return min(1.0, max_norm / (float(total) + 1e-6))
