"""Tests of parry.defenses.lipschitz: GroupSort, spectral layers, the global Lipschitz bound,
the margin certificate, and certified accuracy against empirical attacks (PGD-L2, AutoAttack)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from parry import Classifier
from parry.attacks import PGD
from parry.attacks.autoattack import autoattack
from parry.defenses.lipschitz import (GroupSort, MaxMin, SpectralConv2d, SpectralLinear, certified_accuracy,
                                      certified_norms, layer_norms, lipschitz_bound, lipschitz_margin_loss,
                                      margin_certificate, power_iteration, tighten_)
from parry.zoo import load_checkpoint, make_classifier, save_checkpoint

SLACK = 1e-3


def operator_matrix(layer: nn.Module, shape: tuple[int, ...]) -> Tensor:
    """The matrix of the linear part of an affine ``layer`` on inputs of ``shape`` (batch 1)."""
    zero = torch.zeros(1, *shape)
    with torch.no_grad():
        offset = layer(zero)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v) - offset, zero)
    return jac.reshape(offset.numel(), zero.numel())


def spectral_norm(matrix: Tensor) -> float:
    return float(torch.linalg.matrix_norm(matrix.double(), ord=2))


def ratios(f, x: Tensor, x2: Tensor) -> Tensor:
    """||f(x) - f(x2)|| / ||x - x2|| per pair."""
    with torch.no_grad():
        return (f(x) - f(x2)).flatten(1).norm(dim=1) / (x - x2).flatten(1).norm(dim=1)


def ascent_ratio(f, x0: Tensor, steps: int = 150, scale: float = 0.1, seed: int = 0) -> float:
    """The largest ratio found by gradient ascent on (x, delta) from ``x0`` (Adam)."""
    g = torch.Generator().manual_seed(seed)
    x = x0.clone().requires_grad_(True)
    delta = (scale * torch.randn(x0.shape, generator=g)).requires_grad_(True)
    opt = torch.optim.Adam([x, delta], lr=1e-2)
    best = 0.0
    for _ in range(steps):
        r = (f(x + delta) - f(x)).flatten(1).norm(dim=1) / delta.flatten(1).norm(dim=1).clamp_min(1e-9)
        best = max(best, float(r.detach().max()))
        opt.zero_grad()
        (-r.sum()).backward()
        opt.step()
    return best


def plain_net() -> Classifier:
    """A random plain conv net (biases, ReLU, GroupSort, average and max pooling, tanh) inside a
    Classifier with mean/std normalisation, on 1x8x8 inputs."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), GroupSort(3)),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3),
    )
    return Classifier(net, num_classes=3, mean=0.5, std=0.5, input_shape=(1, 8, 8))


# ---------------------------------------------------------------------------------------------
# GroupSort
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("group_size", [2, 3])
def test_groupsort_sorts_each_group(group_size):
    x = torch.randn(4, 6, 3, 3)
    out = GroupSort(group_size)(x)
    groups = out.unflatten(1, (6 // group_size, group_size))
    assert (groups.diff(dim=2) >= 0).all()
    assert torch.allclose(groups.sort(dim=2).values, x.unflatten(1, (6 // group_size, group_size)).sort(dim=2).values)
    assert torch.equal(MaxMin()(x), x.unflatten(1, (3, 2)).sort(dim=2).values.flatten(1, 2))
    assert GroupSort(group_size)(torch.randn(5, 12)).shape == (5, 12)


@pytest.mark.parametrize("act", [GroupSort(2), GroupSort(4), MaxMin()])
def test_groupsort_preserves_gradient_norm(act):
    x = torch.randn(8, 16, requires_grad=True)
    upstream = torch.randn(8, 16)
    (grad,) = torch.autograd.grad(act(x), x, upstream)
    assert torch.allclose(grad.norm(dim=1), upstream.norm(dim=1), rtol=1e-6)
    relu_grad = torch.autograd.grad(F.relu(x), x, upstream)[0]  # for contrast: ReLU loses norm
    assert (relu_grad.norm(dim=1) < upstream.norm(dim=1)).all()


def test_groupsort_refuses_bad_input():
    with pytest.raises(ValueError, match="group_size"):
        GroupSort(1)
    with pytest.raises(ValueError, match="group_size"):
        GroupSort(True)
    with pytest.raises(ValueError, match="not divisible by group_size=4"):
        GroupSort(4)(torch.randn(2, 6))
    with pytest.raises(ValueError, match="x: expected shape"):
        GroupSort(2)(torch.randn(6))


# ---------------------------------------------------------------------------------------------
# Power iteration and spectral layers
# ---------------------------------------------------------------------------------------------

def test_power_iteration_matches_svd():
    torch.manual_seed(0)
    a = torch.randn(20, 30)
    sigma, v = power_iteration(lambda u: u @ a.T, (1, 30), iterations=1000, tol=0.0)
    assert sigma == pytest.approx(spectral_norm(a), rel=1e-4)
    assert float(v.norm()) == pytest.approx(1.0, rel=1e-5)
    assert power_iteration(lambda u: 0 * u, (1, 5))[0] == 0.0


def test_spectral_linear_has_operator_norm_one():
    torch.manual_seed(0)
    layer = SpectralLinear(30, 20)
    with torch.no_grad():
        layer.weight.mul_(7.0).add_(torch.randn(20, 30))
    layer.train()
    for _ in range(3):
        layer(torch.randn(4, 30)).sum().backward()  # training forwards iterate and stay differentiable
    assert layer.weight.grad is not None
    tighten_(layer)
    layer.eval()
    norm = spectral_norm(operator_matrix(layer, (30,)))
    assert 1 - 1e-3 <= norm <= 1 + 1e-3
    assert spectral_norm(layer.normalised_weight().detach()) <= 1 + 1e-3


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0), (2, 2)])
def test_spectral_conv_has_operator_norm_one(stride, padding):
    torch.manual_seed(stride + 10 * padding)
    layer = SpectralConv2d(3, 5, 3, stride=stride, padding=padding, input_size=8)
    with torch.no_grad():
        layer.weight.normal_()
    tighten_(layer)
    layer.eval()
    norm = spectral_norm(operator_matrix(layer, (3, 8, 8)))
    assert 1 - 1e-3 <= norm <= 1 + 1e-3
    # The reshaped kernel's norm is not the operator's: normalising it would not give norm 1.
    kernel = layer.normalised_weight().detach().reshape(5, -1)
    assert abs(spectral_norm(kernel) - norm) > 1e-2


def test_spectral_layers_refuse_bad_input():
    with pytest.raises(ValueError, match="input_size"):
        SpectralConv2d(1, 2, 5, input_size=2)
    with pytest.raises(ValueError, match="stride"):
        SpectralConv2d(1, 2, 3, stride=0, input_size=8)
    with pytest.raises(ValueError, match="n_power_iterations"):
        SpectralLinear(3, 2, n_power_iterations=0)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 1, 8, 8\)"):
        SpectralConv2d(1, 2, 3, input_size=8)(torch.zeros(1, 1, 9, 9))
    with pytest.raises(ValueError, match="3 features"):
        SpectralLinear(3, 2)(torch.zeros(1, 4))


def test_two_training_forwards_then_one_backward():
    """Objectives such as TRADES run several forwards before backward; the in-place update of
    the power-iteration vector must not break the first graph."""
    net = nn.Sequential(SpectralConv2d(1, 2, 3, input_size=6), MaxMin(), nn.Flatten(), SpectralLinear(32, 2))
    net.train()
    x = torch.randn(3, 1, 6, 6)
    (net(x).sum() + net(x + 0.1).sum()).backward()


# ---------------------------------------------------------------------------------------------
# The global bound
# ---------------------------------------------------------------------------------------------

def test_power_bound_of_one_layer_is_its_norm():
    torch.manual_seed(0)
    linear = nn.Linear(12, 7)
    assert lipschitz_bound(nn.Sequential(linear), (12,), method="power") == pytest.approx(
        spectral_norm(linear.weight.detach()) * (1 + SLACK), rel=1e-4)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    exact = spectral_norm(operator_matrix(conv, (2, 7, 7)))
    assert lipschitz_bound(nn.Sequential(conv), (2, 7, 7), method="power") == pytest.approx(
        exact * (1 + SLACK), rel=1e-4)
    assert lipschitz_bound(nn.Sequential(conv), (2, 7, 7), method="power", slack=0.0) <= exact * (1 + 1e-5)


def circular(conv: nn.Conv2d) -> nn.Module:
    """``conv``'s weights and stride as a circular convolution (wrap-around, no padding)."""
    def forward(x: Tensor) -> Tensor:
        k = conv.kernel_size[0]
        return F.conv2d(F.pad(x, (0, k - 1, 0, k - 1), mode="circular"), conv.weight, stride=conv.stride)
    return forward


@pytest.mark.parametrize("kernel,stride,padding,size", [(3, 1, 1, 6), (3, 2, 1, 7), (4, 2, 1, 8), (2, 2, 0, 6),
                                                         (5, 3, 2, 7), (3, 1, 0, 5)])
def test_certified_conv_bounds(kernel, stride, padding, size, monkeypatch):
    """Small convolutions: the matrix written out from the kernel is the layer's (dense
    operator of torch's conv2d) and the bound is its norm. Above ``DENSE_LIMIT``: the Fourier
    bound, which equals the exact norm (dense SVD) of the strided circular convolution that
    the zero-padded one is a crop of (on the padded size rounded up to a multiple of the
    stride), so it is at least the zero-padded layer's norm."""
    torch.manual_seed(kernel * 10 + stride)
    conv = nn.Conv2d(3, 4, kernel, stride=stride, padding=padding)
    shape = (3, size, size)
    operator = operator_matrix(conv, shape)
    matrix = certified_norms.conv2d_matrix(conv.weight, (size, size), (stride, stride), (padding, padding))
    assert torch.equal(matrix, operator.double())  # every entry a kernel weight, copied exactly
    exact = spectral_norm(operator)
    assert lipschitz_bound(nn.Sequential(conv), shape) == pytest.approx(exact, rel=1e-9)
    monkeypatch.setattr(certified_norms, "DENSE_LIMIT", matrix.numel() - 1)
    fourier = lipschitz_bound(nn.Sequential(conv), shape)
    grid = -(-(size + 2 * padding) // stride) * stride
    wrapped = spectral_norm(operator_matrix(circular(conv), (3, grid, grid)))
    assert fourier == pytest.approx(wrapped, rel=1e-9)
    assert exact <= fourier * (1 + 1e-12)
    assert dict(layer_norms(nn.Sequential(conv), shape))["0"] == fourier


def test_certified_bounds_of_linear_batchnorm_and_pooling_are_exact():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3).eval()
    bn.running_var.uniform_(0.2, 2.0)
    bn.weight.data.uniform_(-2, 2)
    layers = [(nn.Linear(12, 7), (12,)), (bn, (3, 4, 4)), (nn.AvgPool2d(2), (2, 6, 6)),
              (nn.AvgPool2d(3, stride=3), (1, 6, 6)), (nn.AdaptiveAvgPool2d(1), (2, 5, 5))]
    for layer, shape in layers:
        exact = spectral_norm(operator_matrix(layer, shape))
        assert lipschitz_bound(nn.Sequential(layer), shape) == pytest.approx(exact, rel=1e-6), layer
    overlapping = nn.AvgPool2d(3, stride=1)  # a bound, not exact
    assert spectral_norm(operator_matrix(overlapping, (1, 6, 6))) <= lipschitz_bound(nn.Sequential(overlapping),
                                                                                       (1, 6, 6))


def test_certified_bound_is_above_the_power_estimate():
    clf = plain_net()
    certified, power = dict(layer_norms(clf)), dict(layer_norms(clf, method="power"))
    assert certified.keys() == power.keys()
    for name in certified:
        assert certified[name] >= power[name] * (1 - 1e-6), name
    assert lipschitz_bound(clf, method="power", slack=0.0) <= lipschitz_bound(clf) * (1 + 1e-6)


def test_bound_counts_normalisation_and_activations():
    clf = plain_net()
    for method, slack in (("power", SLACK), ("certified", 0.0)):
        norms = dict(layer_norms(clf, method=method))
        assert norms["normalisation"] == pytest.approx(2.0)
        assert norms["1"] == norms["3.1"] == norms["4"] == norms["5"] == norms["7"] == 1.0
        product = math.prod(n * (1 + slack) if k in {"0", "2", "3.0", "6", "8"} else n for k, n in norms.items())
        assert lipschitz_bound(clf, method=method) == pytest.approx(product, rel=1e-9)


def test_bound_is_above_random_and_adversarial_ratios():
    clf = plain_net()
    bound = lipschitz_bound(clf)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(400, 1, 8, 8, generator=g)
    far = ratios(clf, x, torch.rand(400, 1, 8, 8, generator=g))
    near = ratios(clf, x, x + 1e-3 * torch.randn(400, 1, 8, 8, generator=g))
    jac = max(spectral_norm(torch.autograd.functional.jacobian(clf, x[i:i + 1]).reshape(3, 64)) for i in range(20))
    ascent = max(ascent_ratio(clf, x[:16], seed=s, scale=sc) for s, sc in [(0, 0.1), (1, 1.0), (2, 1e-3)])
    largest = max(float(far.max()), float(near.max()), jac, ascent)
    assert largest <= bound
    assert ascent >= float(far.max())  # the ascent does find larger ratios than random pairs


def test_bound_refuses_what_it_cannot_bound():
    class Square(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x * x

    class Custom(nn.Sequential):
        def forward(self, x: Tensor) -> Tensor:
            return super().forward(x) * 2

    with pytest.raises(ValueError, match=r"layer '1' \(Square\)"):
        lipschitz_bound(nn.Sequential(nn.Linear(3, 3), Square()), (3,))
    with pytest.raises(ValueError, match=r"layer '0' \(MaxPool2d\)"):
        lipschitz_bound(nn.Sequential(nn.MaxPool2d(3, stride=1)), (1, 6, 6))
    assert lipschitz_bound(nn.Sequential(nn.MaxPool2d(2)), (1, 6, 6)) == 1.0
    with pytest.raises(ValueError, match="overrides Sequential.forward"):
        lipschitz_bound(Custom(nn.Linear(3, 3)), (3,))
    with pytest.raises(ValueError, match="only an nn.Sequential"):
        lipschitz_bound(make_classifier("lenet", "mnist").model, (1, 28, 28))
    with pytest.raises(ValueError, match="input_shape: required"):
        lipschitz_bound(nn.Sequential(nn.Linear(3, 3)))
    with pytest.raises(ValueError, match="input_shape: expected positive"):
        lipschitz_bound(nn.Sequential(nn.Linear(3, 3)), (0,))
    with pytest.raises(ValueError, match="iterations"):
        lipschitz_bound(nn.Sequential(nn.Linear(3, 3)), (3,), iterations=0)
    with pytest.raises(ValueError, match="slack"):
        lipschitz_bound(nn.Sequential(nn.Linear(3, 3)), (3,), method="power", slack=-1.0)
    with pytest.raises(ValueError, match="method"):
        lipschitz_bound(nn.Sequential(nn.Linear(3, 3)), (3,), method="exact")
    conv1d = nn.Sequential(nn.Conv1d(1, 2, 3))
    with pytest.raises(ValueError, match=r"layer '0'.*no certified.*method='power'"):
        lipschitz_bound(conv1d, (1, 8))
    assert lipschitz_bound(conv1d, (1, 8), method="power") > 0
    with pytest.raises(ValueError, match="groups=1"):
        lipschitz_bound(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), (2, 6, 6))


# ---------------------------------------------------------------------------------------------
# The margin certificate
# ---------------------------------------------------------------------------------------------

def test_margin_certificate_on_hand_made_logits():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [0.5, -1.0, 4.5]])
    labels = torch.tensor([0, 0, 0, 2])
    s = math.sqrt(2.0) * 2.0
    assert torch.allclose(margin_certificate(logits, 2.0, labels), torch.tensor([2 / s, 0.0, 0.0, 4 / s]))
    assert torch.allclose(margin_certificate(logits, 2.0), torch.tensor([2 / s, 1 / s, 0.0, 4 / s]))
    assert torch.allclose(margin_certificate(logits, 0.5, labels), 4 * margin_certificate(logits, 2.0, labels))


def test_lipschitz_margin_loss():
    logits = torch.tensor([[2.0, 1.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0])
    expected = F.cross_entropy(10.0 * torch.tensor([[2.0, 2.0, 1.0]]), labels)
    loss = lipschitz_margin_loss(logits, labels, radius=1 / math.sqrt(2.0))
    assert float(loss.detach()) == pytest.approx(float(expected))
    loss.backward()
    assert logits.grad is not None
    plain = lipschitz_margin_loss(logits.detach(), labels, radius=0.0, temperature=1.0)
    assert float(plain) == pytest.approx(float(F.cross_entropy(logits.detach(), labels)))
    with pytest.raises(ValueError, match="radius"):
        lipschitz_margin_loss(logits, labels, radius=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        lipschitz_margin_loss(logits, labels, radius=0.1, temperature=0.0)
    with pytest.raises(ValueError, match="labels"):
        lipschitz_margin_loss(logits, torch.tensor([3]), radius=0.1)
    with pytest.raises(ValueError, match="logits"):
        lipschitz_margin_loss(torch.zeros(3), labels, radius=0.1)


def test_margin_certificate_refuses_bad_input():
    logits = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="logits"):
        margin_certificate(torch.zeros(3), 1.0)
    with pytest.raises(TypeError, match="logits"):
        margin_certificate([[1.0, 2.0]], 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        margin_certificate(torch.tensor([[float("nan"), 1.0]]), 1.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lipschitz"):
            margin_certificate(logits, bad)
    with pytest.raises(ValueError, match="labels"):
        margin_certificate(logits, 1.0, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="labels"):
        margin_certificate(logits, 1.0, torch.tensor([0]))


# ---------------------------------------------------------------------------------------------
# A trained Lipschitz MNIST network: certified <= empirical robust accuracy
# ---------------------------------------------------------------------------------------------

RADII = [0.25, 0.5, 1.0]


@pytest.fixture(scope="module")
def lipschitz_clf(mnist_train):
    """lipschitz-mnist (width 16) after 300 Adam steps (batch 64) on 4,000 spread MNIST images,
    with the Lipschitz-margin loss (wrong logits raised by 0.5, temperature 10): about 5 s."""
    torch.manual_seed(0)
    clf = make_classifier("lipschitz-mnist", "mnist", width=16)
    x, y = mnist_train.spread(4000).tensors()
    opt = torch.optim.Adam(clf.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    clf.train()
    for _ in range(300):
        idx = torch.randint(0, x.shape[0], (64,), generator=g)
        loss = lipschitz_margin_loss(clf(x[idx]), y[idx], radius=0.5 / math.sqrt(2.0), temperature=10.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tighten_(clf)
    return clf.eval()


@pytest.fixture(scope="module")
def points(mnist_test):
    return mnist_test.spread(200).tensors()


def test_trained_layers_have_norm_one(lipschitz_clf):
    for name, norm in layer_norms(lipschitz_clf, method="power"):
        assert norm <= 1 + 1e-3, name
    assert lipschitz_bound(lipschitz_clf, method="power") <= (1 + 1e-3) ** 5
    # the provable bound: every layer's matrix is small enough to be measured exactly
    for name, norm in layer_norms(lipschitz_clf):
        assert norm <= 1 + 1e-3, name
    assert lipschitz_bound(lipschitz_clf) <= (1 + 1e-3) ** 4


def test_bound_is_above_ratios_of_the_trained_model(lipschitz_clf, points):
    x, y = points
    bound = lipschitz_bound(lipschitz_clf)
    adv = PGD(1.0, "l2", steps=20, early_stop=False, seed=0).generate(lipschitz_clf, x, y)
    pgd = ratios(lipschitz_clf, x, adv)
    g = torch.Generator().manual_seed(0)
    rand = ratios(lipschitz_clf, x, (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1))
    ascent = ascent_ratio(lipschitz_clf, x[:8], steps=100)
    largest = max(float(pgd.max()), float(rand.max()), ascent)
    assert largest <= bound
    assert largest > 0.5 * bound  # the network uses much of its Lipschitz budget


def test_certified_accuracy_is_below_pgd_accuracy(lipschitz_clf, points):
    x, y = points
    bound = lipschitz_bound(lipschitz_clf)
    cert = certified_accuracy(lipschitz_clf, x, y, [0.0, *RADII], bound)
    with torch.no_grad():
        radius = margin_certificate(lipschitz_clf(x), bound, y)
    assert cert[0.0] == pytest.approx(float((lipschitz_clf(x).argmax(1) == y).float().mean()))
    assert cert[0.25] > 0.6  # non-trivial certificates
    for r in RADII:
        res = PGD(r, "l2", steps=20, seed=0)(lipschitz_clf, x, y)
        assert cert[r] <= float(res.robust.float().mean())
        assert not (res.success & (radius > r)).any()  # no certified point is ever broken
    default = certified_accuracy(lipschitz_clf, x, y, RADII)  # the bound computed inside
    assert default == {r: cert[r] for r in RADII}
    assert list(default.values()) == sorted(default.values(), reverse=True)


def test_certified_accuracy_is_below_autoattack_accuracy(lipschitz_clf, points):
    x, y = (t[::10] for t in points)  # 20 points
    bound = lipschitz_bound(lipschitz_clf)
    with torch.no_grad():
        radius = margin_certificate(lipschitz_clf(x), bound, y)
    for r in (0.5, 1.0):
        out = autoattack(r, "l2", preset="fast")(lipschitz_clf, x, y)
        assert certified_accuracy(lipschitz_clf, x, y, [r], bound)[r] <= out.robust_accuracy
        assert not (out.result.success & (radius > r)).any()


def test_certified_accuracy_refuses_bad_input(lipschitz_clf, points):
    x, y = (t[:4] for t in points)
    for bad in ([], [-0.1], [float("nan")], 0.5, [True]):
        with pytest.raises(ValueError, match="radii"):
            certified_accuracy(lipschitz_clf, x, y, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lipschitz"):
        certified_accuracy(lipschitz_clf, x, y, [0.1], lipschitz=0.0)
    with pytest.raises(ValueError, match="bounds"):
        certified_accuracy(lipschitz_clf, x + 2, y, [0.1])
    with pytest.raises(ValueError, match="y"):
        certified_accuracy(lipschitz_clf, x, y[:2], [0.1])


def test_lipschitz_mnist_checkpoint_round_trip(lipschitz_clf, points, tmp_path):
    x, _ = points
    save_checkpoint(tmp_path / "lip", lipschitz_clf, architecture="lipschitz-mnist", arch_kwargs={"width": 16},
                    dataset="mnist", recipe={}, metrics={})
    loaded, _ = load_checkpoint(tmp_path / "lip")
    with torch.no_grad():
        assert torch.allclose(loaded(x), lipschitz_clf(x), atol=1e-6)
    assert sum(p.numel() for p in make_classifier("lipschitz-mnist", "mnist").parameters()) == 839_018
