"""Solutions of notebooks/04_projection_head.ipynb's exercises (explained in 04_projection_head.md).

Executed by ``exercises.fill`` in the notebook's namespace: it uses the notebook's variables.
"""

# 1. Linear(768, 1344) with bias: w * h weights + w biases
answer_1 = 1344 * 768 + 1344

# 2. 1 + (w - h) sigma^2 for 768 -> 1344
answer_2 = 1 + (1344 - 768) * 0.02 ** 2

# 3. the head's rank (hidden) minus one for LayerNorm: 383 for e5-small, 127 for the toy
answer_3 = hidden - 1


# 4. W0 = [I; R], b0 = 0
def identity_head(hidden, width, sigma=0.02, seed=0):
    head = torch.nn.Linear(hidden, width)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.copy_(torch.cat([torch.eye(hidden), torch.randn(width - hidden, hidden, generator=gen) * sigma]))
        head.bias.zero_()
    return head
