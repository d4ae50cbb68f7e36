"""Solutions of notebooks/09_piccolo_gpt.ipynb's exercises (explained in 09_piccolo_gpt.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""


# 1. flip each row: the last 1 becomes the first, and argmax finds the first maximum (the trailing zeros)
def last_token_index(mask):
    return mask.shape[1] - 1 - mask.flip(1).argmax(1)


# 2. r (d_in + d_out) per adapted layer: q_proj 4096 -> 4096, v_proj 4096 -> 1024, 32 layers
answer_2 = 32 * 8 * ((4096 + 4096) + (4096 + 1024))

# 3. causal attention: positions 2..9 read token 2, positions 0 and 1 do not
answer_3 = list(range(2, 10))
