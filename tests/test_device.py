"""The device and precision choice, on the CPU: CUDA is mocked where a test needs it."""

from __future__ import annotations

import pytest
import torch

from ganaug import device as dev
from ganaug.errors import GanaugError


@pytest.mark.parametrize(
    "capability, dtype",
    [((7, 5), torch.float16), ((7, 0), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)],
)
def test_bf16_only_from_compute_capability_8_else_fp16_with_a_grad_scaler(monkeypatch, capability, dtype):
    """A T4 (7.5) or V100 (7.0) emulates bf16 slowly: fp16 + GradScaler there; an A100 (8.0) or H100 (9.0): bf16."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cuda = torch.device("cuda", 0)
    assert dev.half_precision(cuda) == dtype
    assert dev.needs_grad_scaler(cuda) == (dtype == torch.float16)
    cpu = torch.device("cpu")
    assert dev.half_precision(cpu) is None and not dev.needs_grad_scaler(cpu)


def test_ganaug_device_picks_the_device_or_refuses_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(dev, "_announced", set())
    monkeypatch.setenv(dev.DEVICE_ENV, "cpu")
    assert dev.pick_device() == torch.device("cpu") and dev.pick_device() == torch.device("cpu")
    assert capsys.readouterr().out.count("device: cpu (") == 1  # said once per process
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for wanted, message in [
        ("gpu", "expected cpu, cuda or cuda:N"),
        ("mps", "expected cpu, cuda or cuda:N"),
        ("cuda", "has no CUDA device"),
        ("cuda:1", "has no CUDA device"),
    ]:
        monkeypatch.setenv(dev.DEVICE_ENV, wanted)
        with pytest.raises(GanaugError, match=f"GANAUG_DEVICE={wanted}.*{message}") as err:
            dev.pick_device()
        assert "\n" not in str(err.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(dev, "describe", str)  # no GPU to name here
    monkeypatch.setenv(dev.DEVICE_ENV, "cuda:2")
    with pytest.raises(GanaugError, match="has 2 CUDA device\\(s\\), cuda:0 to cuda:1"):
        dev.pick_device()
    monkeypatch.setenv(dev.DEVICE_ENV, "cuda:1")
    assert dev.pick_device() == torch.device("cuda", 1)


def test_train_deterministic_false_lets_cudnn_pick_fast_kernels():
    try:
        dev.seed_everything(0, deterministic=False)
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
    finally:
        dev.seed_everything(0)
    assert not torch.backends.cudnn.benchmark and torch.are_deterministic_algorithms_enabled()
