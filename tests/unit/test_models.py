import dataclasses
import itertools
import typing

import pytest
import torch

from stargan.accel.recompute import recompute
from stargan.config import ConfigError, GRecompute, ModelConfig
from stargan.models import build_discriminator, build_generator, count_parameters

RECOMPUTE = typing.get_args(GRecompute)

# REFERENCE.md, 'Parameter counts'.
PARAMETER_TABLE = [
    (dict(image_size=128, c_dim=5, n_classes=5), 8_430_528, 44_762_048),
    (dict(image_size=128, c_dim=8, n_classes=8), 8_439_936, 44_786_624),
    (dict(image_size=128, c_dim=15, n_classes=13), 8_461_888, 44_827_584),
    (dict(image_size=256, c_dim=5, n_classes=5), 8_430_528, 44_884_928),
    (
        dict(image_size=64, c_dim=5, n_classes=5, g_conv_dim=32, d_conv_dim=32, g_repeat_num=3),
        1_231_840,
        11_191_776,
    ),
]


@pytest.mark.parametrize(("kwargs", "g_params", "d_params"), PARAMETER_TABLE)
def test_parameter_counts_match_the_reference(kwargs, g_params, d_params):
    cfg = ModelConfig(**kwargs)
    with torch.device("meta"):  # counts need no memory
        assert count_parameters(build_generator(cfg)) == g_params
        assert count_parameters(build_discriminator(cfg)) == d_params


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_output_shapes(size):
    d_repeat = {16: 4, 32: 5, 64: 6, 128: 6}[size]
    cfg = ModelConfig(
        image_size=size,
        c_dim=7,
        n_classes=5,
        g_conv_dim=4,
        d_conv_dim=4,
        g_repeat_num=1,
        d_repeat_num=d_repeat,
    )
    x, c = torch.randn(2, 3, size, size), torch.rand(2, 7)
    assert build_generator(cfg)(x, c).shape == (2, 3, size, size)
    src, cls = build_discriminator(cfg)(x)
    side = size // 2**d_repeat
    assert src.shape == (2, 1, side, side)
    assert cls.shape == (2, 5)


def _tiny():
    return ModelConfig(
        image_size=16,
        c_dim=5,
        n_classes=5,
        g_conv_dim=8,
        d_conv_dim=8,
        g_repeat_num=2,
        d_repeat_num=3,
    )


def test_every_parameter_receives_a_gradient():
    torch.manual_seed(0)
    g, d = build_generator(_tiny()), build_discriminator(_tiny())
    x, c = torch.randn(3, 3, 16, 16), torch.rand(3, 5)
    src, cls = d(g(x, c))
    (src.mean() + cls.sum()).backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_eval_mode_uses_per_instance_statistics():
    # The official .eval() trap: with running stats, eval outputs differ from training ones.
    torch.manual_seed(0)
    g = build_generator(_tiny())
    x, c = torch.randn(2, 3, 16, 16), torch.rand(2, 5)
    for _ in range(3):
        g(torch.randn(2, 3, 16, 16) * 5 + 3, c)  # would pollute running stats, if any
    train_out = g(x, c)
    g.eval()
    torch.testing.assert_close(g(x, c), train_out)
    assert not any("running" in name for name, _ in g.named_buffers())


def test_discriminator_has_no_cross_sample_layers():
    # Real, fake and interpolated images share one forward; a sample's output must not
    # depend on its batch mates.
    torch.manual_seed(0)
    d = build_discriminator(_tiny())
    x = torch.randn(4, 3, 16, 16)
    alone = torch.cat([d(x[i : i + 1])[0] for i in range(4)])
    torch.testing.assert_close(d(x)[0], alone)


def test_shape_contracts_name_the_expected_layout():
    g = build_generator(_tiny())
    with pytest.raises(ValueError, match=r"\[N, 3, 16, 16\]"):
        g(torch.randn(2, 3, 32, 32), torch.rand(2, 5))
    with pytest.raises(ValueError, match="c_dim=5"):
        g(torch.randn(2, 3, 16, 16), torch.rand(2, 4))


def test_invalid_model_config_is_explained():
    with pytest.raises(ConfigError, match="divisible by 2\\*\\*d_repeat_num"):
        ModelConfig(image_size=32, d_repeat_num=6)


def test_residual_generator_starts_as_the_identity_and_learns():
    cfg = dataclasses.replace(_tiny(), g_output="residual")
    g = build_generator(cfg)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(g(x, torch.rand(2, 5)), x)
    g(x, torch.rand(2, 5)).sum().backward()
    assert g.main[-1].weight.grad.abs().sum() > 0


def test_mask_generator_starts_close_to_the_identity():
    cfg = dataclasses.replace(_tiny(), g_output="mask")
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    g, c = build_generator(cfg), torch.rand(2, 5)
    y = g(x, c)
    assert (y - x).abs().max() < 0.1
    assert y.abs().max() <= 1
    image, attention = g(x, c, return_attention=True)
    assert torch.equal(image, y) and attention.shape == (2, 1, 16, 16)
    assert attention.min() > 0 and attention.max() < 0.1
    with pytest.raises(ValueError, match="attention"):
        build_generator(_tiny())(x, c, return_attention=True)


def _kept_bytes(fn) -> int:
    """Bytes allocated while ``fn`` runs and still held when it returns (its output and what
    autograd keeps for backward, selective checkpointing's cache included), by the
    profiler's allocation records."""
    cpu = torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[cpu], profile_memory=True) as prof:
        out = fn()
    del out
    return sum(e.self_cpu_memory_usage for e in prof.events())


def _recomputing(g: torch.nn.Module, mode: str) -> torch.nn.Module:
    """``g`` with its layers recomputed as speed.g_recompute ``mode`` says (stargan.accel)."""
    recompute(g.main, mode)
    return g


@pytest.mark.parametrize("output", ["image", "mask"])
def test_recomputing_generator_keeps_less_and_computes_the_same(output):
    cfg = dataclasses.replace(_tiny(), g_output=output)
    torch.manual_seed(0)
    g, x, c = build_generator(cfg), torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 5)
    want = g(x, c)  # the paper's G, as built
    with torch.no_grad():
        want_no_grad = g(x, c)
    names = list(g.state_dict())
    kept = {mode: _kept_bytes(lambda m=mode: _recomputing(g, m)(x, c)) for mode in RECOMPUTE}
    # Every layer's activations (far more than the input); the conv outputs only (about
    # half: the instance norms' and ReLUs' are redone); the input and the output blend's
    # few image-sized tensors.
    assert kept["none"] > 20 * x.numel() * 4
    assert kept["norms"] < 0.7 * kept["none"]
    assert kept["all"] < 0.25 * kept["none"]
    with torch.no_grad():  # nothing kept, nothing to recompute: the plain forward
        assert _kept_bytes(lambda: _recomputing(g, "norms")(x, c)) <= x.numel() * 4
    for mode in RECOMPUTE:
        _recomputing(g, mode)
        assert torch.equal(g(x, c), want)
        with torch.no_grad():
            assert torch.equal(g(x, c), want_no_grad)
    assert list(g.state_dict()) == names  # the same parameters and names: checkpoints load


def _peak_bytes(fn) -> int:
    """The most bytes held at once by the allocations made while ``fn`` runs, from the
    profiler's allocation records in time order."""
    cpu = torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[cpu], profile_memory=True) as prof:
        fn()
    records = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    )
    return max(itertools.accumulate(n for _, n in records))


@pytest.mark.parametrize("output", ["image", "mask"])
def test_recomputing_generator_rebuilds_one_span_at_a_time(output):
    """'norms' lowers the peak of a forward and backward, not only what the forward keeps:
    backward rebuilds the norms and ReLUs span by span. Rebuilding all of G's at once (one
    checkpoint around G) peaks as high as keeping everything (measured 1.00-1.04x here)."""
    cfg = dataclasses.replace(_tiny(), g_output=output, image_size=32, g_repeat_num=3)
    torch.manual_seed(0)
    g, x, c = build_generator(cfg), torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 5)

    def peak(mode: str) -> int:
        recompute(g.main, mode)
        return _peak_bytes(lambda: g(x, c).square().sum().backward())

    # 0.72-0.73 measured (0.81-0.82 with the first conv kept).
    assert peak("norms") < 0.9 * peak("none")


def test_instance_norm_is_torchs_with_a_faster_kernel():
    """speed.cpu_kernels' GroupNormInstanceNorm (swapped into the paper's nn.InstanceNorm2d in
    place): nn.InstanceNorm2d's parameters and results (outputs and every gradient, to
    rounding) through the group-norm kernel, which it really takes on the CPU."""
    from stargan.accel import use_cpu_kernels
    from stargan.accel.kernels import GroupNormInstanceNorm
    from stargan.models.blocks import instance_norm

    torch.manual_seed(0)
    paper, theirs = instance_norm(6), torch.nn.InstanceNorm2d(6, affine=True)
    assert type(paper) is torch.nn.InstanceNorm2d  # models/ builds the paper's layer
    ours = torch.nn.Sequential(instance_norm(6))
    use_cpu_kernels(ours)
    ours = ours[0]
    assert type(ours) is GroupNormInstanceNorm
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 2)
        theirs.bias.normal_()
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x = torch.randn(3, 6, 9, 7) * 4 + 1
    grads = []
    for norm in (ours, theirs):
        xi = x.clone().requires_grad_()
        y = norm(xi)
        y.pow(2).mul(torch.linspace(-1, 1, 7)).sum().backward()
        grads.append((y, xi.grad, norm.weight.grad, norm.bias.grad))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with torch.profiler.profile() as prof:
        ours(x)
    ops = {e.key for e in prof.key_averages()}
    assert "aten::native_group_norm" in ops and "aten::native_batch_norm" not in ops
    paper.load_state_dict(theirs.state_dict())  # without cpu_kernels: the release's kernel
    with torch.profiler.profile() as prof:
        torch.testing.assert_close(paper(x), theirs(x), rtol=0, atol=0)
    assert "aten::native_batch_norm" in {e.key for e in prof.key_averages()}
