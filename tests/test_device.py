"""The device and precision choice, on the CPU: CUDA is mocked where a test needs it."""

from __future__ import annotations

import numpy as np
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


def _runs_out_above(limit: int, sizes: list):
    def work(start, stop):
        sizes.append(stop - start)
        if stop - start > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (mocked)")
        return list(range(start, stop))

    return work


def test_out_of_device_memory_halves_the_batch_keeps_it_and_refuses_at_one_image(capsys):
    fit, sizes = dev.ShrinkOnOutOfMemory("score", "score.batch_size"), []
    pieces = fit.run(_runs_out_above(3, sizes), 10)
    assert sum(pieces, []) == list(range(10))  # every row once, in order
    assert sizes[:3] == [10, 5, 2] and fit.piece == 2
    sizes.clear()
    fit.run(_runs_out_above(3, sizes), 10)
    assert set(sizes) == {2}  # the next batch starts at the size that fitted: no failed try
    out = capsys.readouterr().out
    assert "score: out of device memory at 10 images a batch; going on with 5 (set score.batch_size" in out
    with pytest.raises(GanaugError, match="score: one image does not fit in the device's memory; .*GANAUG_DEVICE=cpu"):
        dev.ShrinkOnOutOfMemory("score", "score.batch_size").run(_runs_out_above(0, []), 4)


def test_a_pool_made_in_smaller_pieces_after_running_out_of_memory_is_the_same_pool(tmp_path, monkeypatch, capsys):
    """The latents are drawn per configured batch before any retry, so running out of memory changes no image."""
    from ganaug.gan.networks import Generator
    from ganaug.gan.pool import write_pool

    G = Generator(3, 1, 16, z_dim=8, width=8, min_width=32)
    plain = write_pool(tmp_path / "plain", G, per_class=7, num_classes=3, seed=1, truncation=None, batch_size=8)
    forward = Generator.forward

    def small_memory(self, z, y):
        if len(z) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory (mocked)")
        return forward(self, z, y)

    monkeypatch.setattr(Generator, "forward", small_memory)
    shrunk = write_pool(tmp_path / "shrunk", G, per_class=7, num_classes=3, seed=1, truncation=None, batch_size=8)
    assert "generate: out of device memory at 8 images a batch; going on with 4" in capsys.readouterr().out
    assert np.array_equal(plain.images, shrunk.images) and np.array_equal(plain.latents, shrunk.latents)


def test_gan_real_set_leaves_the_gpu_when_it_would_take_over_a_quarter_of_it(monkeypatch):
    from ganaug.gan.pixels import from_uint8
    from ganaug.gan.train import RealSet, fits_on_device

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 << 30, 16 << 30))  # a 16 GiB card
    cuda = torch.device("cuda", 0)
    assert fits_on_device(10_000 * 64 * 64 * 3, cuda)  # 10k RGB images at 64 px: 0.12 GB
    assert not fits_on_device(10_000 * 256 * 256 * 3 * 3, cuda)  # 30k at 256 px: 5.9 GB > 4 GiB
    assert fits_on_device(10**12, torch.device("cpu"))
    images = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    real = RealSet(images, np.arange(20) % 4, torch.device("cpu"))
    idx = torch.tensor([3, 0, 17, 3])
    assert torch.equal(real[idx], from_uint8(images)[idx])  # the values of converting the whole set first
    assert real.images.dtype == torch.uint8 and real.labels[idx].tolist() == [3, 0, 1, 3]
