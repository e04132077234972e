"""benchmarks/winograd_conv.py: its F(4x4, 3x3) convolution is the 3x3 convolution (values and
gradients, any map size, both memory orders), and the script runs end to end."""

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "winograd_conv.py"
sys.path.insert(0, str(SCRIPT.parent))
from winograd_conv import winograd_conv3x3  # noqa: E402


@pytest.mark.parametrize("size", [(4, 4), (5, 6), (7, 9), (16, 16)])
def test_gradients_are_those_of_the_convolution(size):
    """gradcheck compares the Function's backward with finite differences of its forward, and
    the forward is compared with F.conv2d: both together pin the backward to the conv's. Sizes
    that are not whole 4x4 tiles exercise the padding and cropping."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(winograd_conv3x3(x, w), F.conv2d(x, w, padding=1))
    assert torch.autograd.gradcheck(winograd_conv3x3, (x, w))


@pytest.mark.parametrize("channels_last", [False, True])
def test_float32_matches_the_direct_kernel_in_either_memory_order(channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    x = torch.randn(2, 16, 12, 12).contiguous(memory_format=fmt).requires_grad_(True)
    w = (torch.randn(16, 16, 3, 3) / 12).requires_grad_(True)
    y = winograd_conv3x3(x, w)
    assert y.is_contiguous(memory_format=fmt)
    dy = torch.randn_like(y)
    got = [y, *torch.autograd.grad(y, [x, w], dy)]
    ref = F.conv2d(x, w, padding=1)
    want = [ref, *torch.autograd.grad(ref, [x, w], dy)]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * b.abs().max().item())


def test_times_both_variants_and_reports_their_errors(tmp_path, monkeypatch, capsys):
    out = tmp_path / "winograd.json"
    argv = [str(SCRIPT), "--preset", "synth-tiny", "--reps", "2", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(SCRIPT), run_name="__main__")
    result = json.loads(out.read_text())
    assert {(r["pass"], r["variant"]) for r in result["rows"]} == {
        (p, v)
        for p in ("forward", "forward+backward")
        for v in ("direct (oneDNN)", "winograd F(4x4,3x3)")
    }
    assert all(r["median_ms"] > 0 for r in result["rows"])
    for err in result["error_vs_float64"].values():
        assert set(err) == {"out", "grad_x", "grad_w"} and all(0 < e < 1e-4 for e in err.values())
    assert "error vs float64" in capsys.readouterr().out
