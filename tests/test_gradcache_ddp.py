"""GradCache under DDP (2 CPU processes, gloo) with cross-device negatives equals the uncached 2-process run."""

import pytest

from test_ddp import assert_same_params, run, setup  # noqa: F401  (setup is a fixture)


@pytest.mark.slow
def test_cached_two_processes_equal_uncached_two_processes(setup):  # noqa: F811
    tmp, data, backbone = setup  # retrieval, STS and classification files; dropout off
    common = [backbone, "batch_size=4", "cross_device_negatives=true"]
    plain = run(tmp, "two_plain", 2, data, common)
    cached = run(tmp, "two_cached", 2, data, common + ["gradient_cache=true", "gradient_cache_minibatch=3"])
    assert_same_params(cached, plain)
