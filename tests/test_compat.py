"""The private APIs piccolo_lib relies on still have the shape it expects (piccolo_lib.compat)."""

import inspect

from piccolo_lib import compat


def test_every_private_touch_still_fits_the_installed_versions():
    assert compat.check() == []


def test_a_moved_api_is_reported_with_the_module_to_fix():
    moved = (compat.PrivateTouch("transformers:Trainer", "_save_checkpoint", ("self", "model", "trial", "metrics"),
                                 "piccolo_lib/checkpoints.py", "atomic checkpoints"),
             compat.PrivateTouch("transformers:Trainer", "_no_such_method", ("self",), "x.py", "y"))
    problems = compat.check(moved)
    assert len(problems) == 2
    assert "piccolo_lib relies on ('self', 'model', 'trial', 'metrics'); fix piccolo_lib/checkpoints.py" in problems[0]
    assert problems[1].startswith("transformers.Trainer._no_such_method is gone; fix x.py")


def test_the_overrides_in_the_code_are_the_listed_ones():
    from piccolo_lib.evaluate.run import AtomicResultCache
    from piccolo_lib.train.checkpoints import AtomicCheckpoints

    listed = {(t.owner.rsplit(":", 1)[-1], t.attribute) for t in compat.TOUCHES}
    for cls, base in ((AtomicCheckpoints, "Trainer"), (AtomicResultCache, "ResultCache")):
        own = {n for n, v in vars(cls).items() if n.startswith("_") and not n.startswith("__") and inspect.isfunction(v)}
        assert {(base, n) for n in own} <= listed, f"{cls.__name__} overrides a private method not listed in compat"


def test_losses_accept_the_trainers_extra_keywords():
    # transformers passes num_items_in_batch to a loss's forward: the reference code broke on it
    from piccolo_lib.train.adapter import PiccoloLoss

    params = inspect.signature(PiccoloLoss.forward).parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


UNEVEN_DDP = """
import os, sys, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
rank = int(sys.argv[1]); os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2])
dist.init_process_group("gloo", rank=rank, world_size=2, timeout=__import__("datetime").timedelta(seconds=20))
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))  # a module with buffers
ddp = DDP(net, broadcast_buffers=sys.argv[3] == "1")
x = torch.randn(6, 4)
loss = sum(ddp(part).sum() for part in x.split(2 if rank == 0 else 3))  # rank 0: 3 forwards, rank 1: 2
loss.backward()
print("ok", rank, flush=True)
"""


def _uneven_ddp(broadcast: bool, timeout: float) -> list[int]:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = [subprocess.Popen([sys.executable, "-c", UNEVEN_DDP, str(r), port, "1" if broadcast else "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    codes = []
    for p in procs:
        try:
            p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
        codes.append(p.returncode)
    return codes


def test_ranks_may_run_different_numbers_of_forwards_because_buffers_are_not_broadcast():
    """The reliance of packing and GradCache under DDP (listed in compat.BEHAVIOURS): a step's encoder calls differ
    between ranks (chunks follow each rank's lengths), which DDP allows only with broadcast_buffers off."""
    assert _uneven_ddp(broadcast=False, timeout=120) == [0, 0]
    assert _uneven_ddp(broadcast=True, timeout=60) != [0, 0]  # on: the ranks' collectives no longer pair up


def test_training_turns_buffer_broadcast_off_itself(tmp_path):
    from piccolo_lib.train.config import load_config
    from piccolo_lib.train.loop import training_arguments

    args = training_arguments(load_config(None, {}), tmp_path, precision="fp32", use_cuda=False, world_size=1,
                              sampler=None, report_to="none")
    assert args.ddp_broadcast_buffers is False
    assert any(b.name == "ddp-broadcast-buffers" for b in compat.BEHAVIOURS)
