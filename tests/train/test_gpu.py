"""CUDA-only checks of the GPU paths (``pytest -m gpu``; skipped on CPU-only machines).

The GPU check (benchmarks/gpu/check.py) runs these on a device; the CPU suite only collects them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def tiny_llama(vocab: int = 1024):
    from synthlm.models import ModelConfig, build_model

    cfg = ModelConfig(arch="llama", preset="tiny")
    torch.manual_seed(0)
    return build_model(cfg, vocab_size=vocab).cuda()


def test_bf16_autocast_keeps_fp32_master_weights_and_an_fp32_loss():
    from synthlm.objectives.clm import CausalLM

    model = tiny_llama()
    ids = torch.randint(0, 1024, (2, 64), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        losses, _ = CausalLM().token_losses(model, {"input_ids": ids, "labels": ids})
    losses.sum().backward()
    assert losses.dtype == torch.float32 and torch.isfinite(losses).all()
    assert all(
        p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters()
    )


def test_sdpa_flash_kernel_runs_the_model_in_bf16():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = tiny_llama().to(torch.bfloat16)
    ids = torch.randint(0, 1024, (2, 128), device="cuda")
    with sdpa_kernel(
        SDPBackend.FLASH_ATTENTION
    ):  # raises if the flash kernel cannot run these inputs
        logits = model(input_ids=ids).logits
    assert torch.isfinite(logits).all()


def test_chunked_cross_entropy_matches_the_reference_on_cuda_bf16_logits():
    from synthlm.objectives.cross_entropy import token_cross_entropy

    logits = torch.randn(2, 300, 5000, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, 5000, (2, 300), device="cuda")
    labels[0, :7] = -100
    mine = token_cross_entropy(logits, labels, chunk_tokens=128)
    (grad_mine,) = torch.autograd.grad(mine.sum(), logits)
    ref = F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none"
    ).view(2, 300)
    (grad_ref,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(mine, ref)
    torch.testing.assert_close(grad_mine, grad_ref)


def test_the_prefetch_thread_pins_batches_on_this_ranks_device():
    from synthlm.train.batches import prefetched

    device = torch.device("cuda", torch.cuda.current_device())
    out = list(prefetched((torch.ones(4).pin_memory() for _ in range(3)), depth=2, device=device))
    assert len(out) == 3 and all(t.is_pinned() for t in out)
    moved = out[0].to(device, non_blocking=True)
    torch.cuda.synchronize()
    assert moved.device == device


def test_a_random_init_is_drawn_on_the_gpu_and_reruns_draw_the_same_weights():
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from synthlm.models import ModelConfig, build_model
    from synthlm.train.accel import init_device

    accelerator = Accelerator()
    cfg = ModelConfig(arch="llama", preset="tiny")
    weights = []
    for _ in range(2):
        set_seed(0)
        with init_device(accelerator):
            model = build_model(cfg, vocab_size=1024)
        assert all(p.device.type == "cuda" for p in model.parameters())
        assert all(b.device.type == "cuda" for b in model.buffers())  # rotary tables too
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])
    ids = torch.randint(0, 1024, (2, 32), device="cuda")
    assert torch.isfinite(model(input_ids=ids, labels=ids).loss)


def test_an_fp16_run_scales_its_loss_by_deepspeeds_rule_and_checkpoints_it(tmp_path, data):
    from train_helpers import read_records, synthlm, tiny_config, write_config

    loss_scale = {"initial": 4096, "window": 5, "hysteresis": 2, "min": 1}
    config = tiny_config(tmp_path, data, train={"precision": "fp16", "loss_scale": loss_scale})
    done = synthlm("train", str(write_config(tmp_path / "run.yaml", config)), "--quiet")
    assert done.returncode == 0, done.stderr
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in read_records(tmp_path / "run"))
    saved = torch.load(
        tmp_path / "run" / "checkpoints" / "step-12" / "trainer" / "scaler.pt", weights_only=True
    )
    rule = saved["deepspeed_rule"]
    assert rule["iteration"] == 12 and rule["window"] == 5 and saved["scale"] == rule["scale"]
