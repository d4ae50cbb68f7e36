"""Solutions of notebooks/08_ablation.ipynb's exercises (explained in 08_ablation.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. scores 0-5: stage A keeps the rows scoring at least the midpoint 2.5; those below 4 become full positives too
answer_1 = sum(2.5 <= r["label"] < 4 for r in read_jsonl(TRAIN / "sts.jsonl"))

# 2. the mask's columns: the 16 in-batch positives first, then the 16 x 3 hard negatives
answer_2 = int(false_neg[:, len(pos_ids):].sum())

# 3. stage B: only classification/clustering data still go through InfoNCE
answer_3 = ("retrieval_for", ["cls_contrast"])


# 4. (1 - t) a + t b, tensor by tensor
def merge_linear(state_a, state_b, t):
    return {k: (1 - t) * state_a[k] + t * state_b[k] for k in state_a}
