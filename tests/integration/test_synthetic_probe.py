"""Every SynthFaces label is visible at 32 px: a tiny CNN trained on 2,000 renders must reach
>= 98 % on held-out renders (new identities) for each attribute and each expression.

Run with ``-s`` to see the per-label table:
    PYTHONPATH=src python -m pytest tests/integration/test_synthetic_probe.py -q -s
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from stargan.data.synthfaces import CELEBA_ATTRIBUTES, EXPRESSIONS, SynthFaces

# A learning probe: the slow tier (CI runs it; `bash scripts/test.sh --fast` does not).
pytestmark = pytest.mark.slow

SIZE, N_TRAIN, N_TEST, EPOCHS, THRESHOLD = 32, 2000, 1000, 8, 0.98


def _tensors(ds: SynthFaces) -> tuple[torch.Tensor, torch.Tensor]:
    xs, cs = zip(*(ds[i] for i in range(len(ds))), strict=True)
    return torch.stack(xs), torch.stack(cs)  # [N, 3, S, S], [N, n_labels]


def _probe(n_out: int) -> nn.Module:
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *block(3, 16),
        *block(16, 32),
        *block(32, 64),
        nn.Flatten(),
        nn.Linear(64 * (SIZE // 8) ** 2, n_out),
    )


def _train_and_score(style: str, **kw) -> dict[str, float]:
    """Per-label held-out accuracy of a probe trained on one style."""
    train = _tensors(SynthFaces(style, SIZE, N_TRAIN, seed=0, **kw))
    test = _tensors(SynthFaces(style, SIZE, N_TEST, seed=1, **kw))
    binary = style == "celeba"
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = _probe(train[1].shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=EPOCHS * (N_TRAIN // 50))
    for _ in range(EPOCHS):
        for idx in torch.randperm(N_TRAIN, generator=g).split(50)[: N_TRAIN // 50]:
            x, c = train[0][idx], train[1][idx]
            logits = model(x)
            loss = (
                nn.functional.binary_cross_entropy_with_logits(logits, c)
                if binary
                else nn.functional.cross_entropy(logits, c.argmax(1))
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x) for x in test[0].split(250)])
    if binary:
        correct = ((logits > 0).float() == test[1]).float().mean(0)
        return dict(zip(CELEBA_ATTRIBUTES, correct.tolist(), strict=True))
    pred, true = logits.argmax(1), test[1].argmax(1)
    return {e: (pred[true == k] == k).float().mean().item() for k, e in enumerate(EXPRESSIONS)}


@pytest.fixture
def one_thread():
    """One intra-op thread: deterministic sums, and faster than two on shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_probe_reads_every_label_at_32px(one_thread):
    start = time.perf_counter()
    acc = _train_and_score("celeba", selected_attrs=CELEBA_ATTRIBUTES)
    acc |= _train_and_score("rafd")
    print(
        f"\nSynthFaces probe, {SIZE} px, {N_TRAIN} train / {N_TEST} held-out renders per style, "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(f"{'label':<18}{'accuracy':>9}")
    for name, a in acc.items():
        print(f"{name:<18}{100 * a:>8.1f}%")
    failing = {k: round(v, 4) for k, v in acc.items() if v < THRESHOLD}
    assert not failing, f"labels below {THRESHOLD:.0%} held-out accuracy: {failing}"
