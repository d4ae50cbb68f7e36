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
    from piccolo_lib.checkpoints import AtomicCheckpoints
    from piccolo_lib.evaluation import AtomicResultCache

    listed = {(t.owner.rsplit(":", 1)[-1], t.attribute) for t in compat.TOUCHES}
    for cls, base in ((AtomicCheckpoints, "Trainer"), (AtomicResultCache, "ResultCache")):
        own = {n for n, v in vars(cls).items() if n.startswith("_") and not n.startswith("__") and inspect.isfunction(v)}
        assert {(base, n) for n in own} <= listed, f"{cls.__name__} overrides a private method not listed in compat"


def test_losses_accept_the_trainers_extra_keywords():
    # transformers passes num_items_in_batch to a loss's forward: the reference code broke on it
    from piccolo_lib.losses import PiccoloLoss

    params = inspect.signature(PiccoloLoss.forward).parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
