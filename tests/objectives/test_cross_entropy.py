"""The chunked fp32 cross-entropy equals the definition (log-sum-exp minus the target logit),
values and gradients, chunked or not; the CLM loss still equals HF's own; bf16 autocast keeps
fp32 master weights and an fp32 loss."""

from __future__ import annotations

import torch

from synthlm.objectives.cross_entropy import shifted_labels, token_cross_entropy


def reference(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-log softmax(x)[y] in float64, 0 where the label is -100 (written from the definition)."""
    x = logits.double()
    safe = labels.clamp(min=0)
    nll = torch.logsumexp(x, -1) - x.gather(-1, safe[..., None]).squeeze(-1)
    return torch.where(labels == -100, torch.zeros_like(nll), nll)


def test_chunked_losses_and_gradients_equal_the_definition():
    torch.manual_seed(0)
    logits = torch.randn(3, 50, 97, requires_grad=True)
    labels = torch.randint(0, 97, (3, 50))
    labels[1, 10:20] = -100
    for chunk in (7, 64, 10_000):  # uneven chunks, several, and one (the plain path)
        mine = token_cross_entropy(logits, labels, chunk_tokens=chunk)
        (grad,) = torch.autograd.grad(
            (mine * torch.arange(50.0)).sum(), logits
        )  # per-token upstream grads
        ref = reference(logits, labels)
        (grad_ref,) = torch.autograd.grad((ref * torch.arange(50.0).double()).sum(), logits)
        assert mine.dtype == torch.float32 and mine.shape == labels.shape
        torch.testing.assert_close(mine.double(), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(grad.double(), grad_ref.double(), rtol=1e-5, atol=1e-6)


def test_bf16_logits_give_fp32_losses_equal_to_the_definition():
    logits = torch.randn(2, 40, 300).bfloat16().requires_grad_()
    labels = torch.randint(0, 300, (2, 40))
    mine = token_cross_entropy(logits, labels, chunk_tokens=16)
    assert mine.dtype == torch.float32
    torch.testing.assert_close(mine.double(), reference(logits, labels), rtol=1e-5, atol=1e-5)
    mine.sum().backward()
    assert logits.grad.dtype == torch.bfloat16


def test_shifted_labels_put_the_next_token_at_each_position():
    labels = torch.tensor([[5, 6, 7, -100, 9]])
    assert shifted_labels(labels).tolist() == [[6, 7, -100, 9, -100]]


def tiny_llama():
    from synthlm.models import ModelConfig, build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(arch="llama", preset="tiny"), vocab_size=128)


def test_clm_token_losses_equal_the_hf_model_loss():
    from synthlm.objectives.clm import CausalLM

    model = tiny_llama()
    ids = torch.randint(0, 128, (2, 24))
    labels = ids.clone()
    labels[0, 5:9] = -100
    losses, targets = CausalLM().token_losses(model, {"input_ids": ids, "labels": labels})
    hf = model(input_ids=ids, labels=labels).loss
    torch.testing.assert_close(losses.sum() / targets.sum(), hf)


def test_bf16_autocast_on_cpu_keeps_fp32_master_weights_and_an_fp32_loss():
    from synthlm.objectives.clm import CausalLM

    model = tiny_llama()
    ids = torch.randint(0, 128, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses, _ = CausalLM().token_losses(model, {"input_ids": ids, "labels": ids})
    losses.sum().backward()
    assert losses.dtype == torch.float32 and torch.isfinite(losses).all()
    assert all(
        p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters()
    )
