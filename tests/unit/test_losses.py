import pytest
import torch

from stargan import losses


class TinyCritic(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, 2, 1)
        self.head = torch.nn.Conv2d(4, 1, 3, 1, 1)

    def forward(self, x):
        return self.head(torch.nn.functional.leaky_relu(self.conv(x), 0.01))


def test_gradient_penalty_matches_finite_differences():
    d = TinyCritic().double()
    x = torch.randn(3, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    gp = losses.gradient_penalty(d(x), x)
    # Reference: finite-difference gradient of sum(D(x_n)) wrt every pixel of each sample.
    eps, expected = 1e-6, []
    with torch.no_grad():
        for n in range(3):
            xn = x[n : n + 1].detach()
            grad = torch.zeros_like(xn).view(-1)
            for i in range(grad.numel()):
                e = torch.zeros_like(grad)
                e[i] = eps
                e = e.view_as(xn)
                grad[i] = (d(xn + e).sum() - d(xn - e).sum()) / (2 * eps)
            expected.append((grad.norm() - 1) ** 2)
    torch.testing.assert_close(gp, torch.stack(expected).mean(), rtol=1e-6, atol=1e-8)


def test_gradient_penalty_is_differentiable_for_the_critic_update():
    d = TinyCritic().double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    gp = losses.gradient_penalty(d(x), x)
    gp.backward()  # double backward through D
    # Reference for dGP/dtheta with torch.func: grad of the penalty written independently.
    params = dict(d.named_parameters())

    def penalty(p):
        def out_sum(inp):
            return torch.func.functional_call(d, p, (inp,)).sum()

        g = torch.func.vmap(torch.func.grad(out_sum))(x.detach().unsqueeze(1))
        return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()

    ref = torch.func.grad(penalty)(params)
    for name, p in params.items():
        # A bias cannot change the input gradient, so autograd leaves it without one.
        got = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(got, ref[name])


def test_interpolate_mixes_per_sample():
    real, fake = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    x_hat = losses.interpolate(real, fake, torch.tensor([0.25, 1.0]))
    assert x_hat.requires_grad
    assert torch.allclose(x_hat[0], torch.full((3, 4, 4), 0.75))
    assert torch.allclose(x_hat[1], torch.zeros(3, 4, 4))


def test_wgan_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert losses.d_adversarial_loss("wgan-gp", real, fake).item() == pytest.approx(-2.5)
    assert losses.g_adversarial_loss("wgan-gp", fake).item() == pytest.approx(0.5)


def test_bce_and_lsgan_losses_are_minimised_by_a_perfect_critic():
    big = torch.full((4,), 30.0)
    assert losses.d_adversarial_loss("bce", big, -big).item() < 1e-6
    assert losses.g_adversarial_loss("bce", big).item() < 1e-6
    one, zero = torch.ones(4), torch.zeros(4)
    assert losses.d_adversarial_loss("lsgan", one, zero).item() == 0
    assert losses.g_adversarial_loss("lsgan", zero).item() == 1
    with pytest.raises(ValueError, match="valid"):
        losses.d_adversarial_loss("hinge", one, zero)


def test_binary_classification_sums_labels_and_averages_batch():
    logits = torch.zeros(4, 5)
    target = torch.ones(4, 5)
    # Each logit 0 costs log 2; five labels summed, batch averaged.
    expected = 5 * torch.log(torch.tensor(2.0))
    torch.testing.assert_close(losses.classification_loss("binary", logits, target), expected)


def test_categorical_classification_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 0.0]])
    expected = -torch.log_softmax(logits, 1)[0, 0]
    torch.testing.assert_close(losses.classification_loss("categorical", logits, target), expected)


def test_reconstruction_is_mean_l1():
    assert losses.reconstruction_loss(torch.zeros(2, 3), torch.full((2, 3), 0.5)).item() == 0.5
