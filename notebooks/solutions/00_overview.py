"""Solutions of notebooks/00_overview.ipynb's exercises (explained in 00_overview.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. The cosent datasets are sts and pair_classification (section 1's table)
answer_1 = sum(len(s.dataset) for s in sets if s.task_type == "cosent")

# 2. The report's dims times 1024 / 1792, rounded
answer_2 = [146, 293, 439, 585, 731, 878, 1024]


# 3. The report's seven dims scaled to any width
def mrl_dims(width):
    return sorted({max(1, round(width * d / 1792)) for d in (256, 512, 768, 1024, 1280, 1536, 1792)})
