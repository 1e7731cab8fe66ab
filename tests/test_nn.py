import pytest
import torch

from equirobot.nn.catalog import catalog
from equirobot.nn.conv1d import EquivariantConv1d, RegularGroupConv1d
from equirobot.nn.fields import fiber, regular, trivial
from equirobot.nn.mlp import EquivariantLinear
from equirobot.nn.relaxed import (
    RelaxedGroupConv1d,
    RelaxedLinear,
    RelaxedSteerableConv2d,
    symmetry_regularizer,
)
from equirobot.nn.unet import ConditionalUnet1D
from equirobot.symmetry import ABS_ACTION, SceneSymmetry
from equirobot.symmetry.checks import equivariance_error

GROUPS = ["C4", "C8", "D4"]
CASES = [(group, i) for group in GROUPS for i in range(len(catalog(SceneSymmetry.from_name(group))))]


@pytest.fixture(scope="module")
def catalogs():
    return {group: catalog(SceneSymmetry.from_name(group)) for group in GROUPS}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("group", "index"), CASES)
def test_module_is_equivariant_for_every_group_element(catalogs, group, index, train):
    case = catalogs[group][index]
    sym = SceneSymmetry.from_name(group)
    case.module.train(train)
    errors = equivariance_error(case, case.inputs, case.act_in, case.act_out, sym.elements, case.is_exact)
    exact = [e for e in errors if e.exact]
    assert len(exact) >= len(sym.elements) // 2
    worst = max(exact, key=lambda e: e.relative_error)
    assert worst.relative_error < 1e-4, (
        f"{case.name}: element {worst.element} error {worst.relative_error:.2e}"
    )


@pytest.mark.parametrize(("group", "index"), CASES)
def test_gradients_reach_every_parameter(catalogs, group, index):
    case = catalogs[group][index]
    case.module.train()
    case.module.zero_grad()
    case(case.inputs).square().mean().backward()
    for name, p in case.module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in case.module.parameters())


def test_non_equivariant_unet_is_the_same_class_unconstrained():
    sym = SceneSymmetry(order=1)
    cond = trivial(fiber(sym), 8)
    net = ConditionalUnet1D(sym, ABS_ACTION, cond, down_dims=(8, 16))
    out = net(torch.randn(2, 16, 10), torch.tensor([1, 2]), torch.randn(2, 8))
    assert out.shape == (2, 16, 10)


@pytest.mark.parametrize("order", [3, 4, 8])  # odd orders have no Nyquist frequency
def test_fourier_and_dense_group_convolutions_compute_the_same_map(order):
    sym = SceneSymmetry.from_name(f"C{order}")
    a, b = regular(fiber(sym), 3), regular(fiber(sym), 5)
    fourier = RegularGroupConv1d(a, b, 3)
    # The dense kernel of a circular convolution: out element g, in element h reads weight[..., g - h].
    g, h = torch.meshgrid(torch.arange(order), torch.arange(order), indexing="ij")
    dense = fourier.weight[:, :, (g - h) % order].permute(0, 2, 1, 3, 4).reshape(b.size, a.size, 3)
    x = torch.randn(2, a.size, 12)
    expected = (
        torch.nn.functional.conv1d(x, dense, padding=1) + fourier.bias.repeat_interleave(order)[:, None]
    )
    torch.testing.assert_close(fourier(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("transpose", [False, True])
def test_conv_export_matches(transpose):
    sym = SceneSymmetry.from_name("D4")
    conv = EquivariantConv1d(
        regular(fiber(sym), 2), regular(fiber(sym), 3), 4, stride=2, padding=1, transpose=transpose
    )
    x = torch.randn(2, conv.in_type.size, 8)
    torch.testing.assert_close(conv.export()(x), conv(x))
    linear = EquivariantLinear(regular(fiber(sym), 2), trivial(fiber(sym), 3))
    v = torch.randn(4, linear.in_type.size)
    torch.testing.assert_close(linear.export()(v), linear(v))


def test_bad_input_is_refused():
    sym = SceneSymmetry.from_name("C8")
    conv = EquivariantConv1d(regular(fiber(sym), 2), regular(fiber(sym), 3), 3)
    with pytest.raises(ValueError, match="expected 16 channels"):
        conv(torch.randn(1, 15, 4))
    with pytest.raises(ValueError, match="cyclic group"):
        RegularGroupConv1d(trivial(fiber(sym), 2), regular(fiber(sym), 3), 3)


def _fit_asymmetric(layer, x, target, steps=30):
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = (layer(x) - target).square().mean() + 1e-4 * symmetry_regularizer(layer)
        loss.backward()
        optimizer.step()


def test_relaxed_layers_start_exact_and_learn_to_break_symmetry():
    torch.manual_seed(0)
    sym = SceneSymmetry.from_name("C4")
    reg_in, reg_out = regular(fiber(sym), 2), regular(fiber(sym), 2)
    x = torch.randn(16, reg_in.size, 6)
    # A target that only the identity element's channels carry: no equivariant map produces it.
    target = torch.zeros(16, reg_out.size, 6)
    target[:, 0] = x[:, 0] * 3
    conv = RelaxedGroupConv1d(reg_in, reg_out, 3)
    assert conv.symmetry_breaking() == 0.0 and symmetry_regularizer(conv).item() == 0.0
    _fit_asymmetric(conv, x, target)
    assert conv.symmetry_breaking() > 0.05

    linear = RelaxedLinear(reg_in, reg_out)
    assert linear.symmetry_breaking() == 0.0
    _fit_asymmetric(linear, x[..., 0], target[..., 0])
    assert linear.symmetry_breaking() > 0.05

    steer_in, steer_out = regular(sym.gspace2d, 1), regular(sym.gspace2d, 1)
    steerable = RelaxedSteerableConv2d(steer_in, steer_out, 3, size=8)
    assert steerable.symmetry_breaking() == 0.0
    images = torch.randn(8, steer_in.size, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1.0  # the target lives on one side of the image only
    _fit_asymmetric(steerable, images, images * mask)
    assert steerable.symmetry_breaking() > 0.05


@pytest.mark.parametrize("dims", [2, 3])
def test_grid_encoder_export_matches(dims):
    from equirobot.nn.grid_encoders import SteerableGridEncoder

    sym = SceneSymmetry.from_name("C4")
    encoder = SteerableGridEncoder(sym, 2, dims=dims, widths=(4, 8), out_fields=4)
    x = torch.rand(2, 2, *(12,) * dims)
    encoder.train()
    encoder(x)  # batch-norm running statistics move away from their defaults
    exported = encoder.export()
    torch.testing.assert_close(exported(x), encoder.eval()(x))


def test_unet_export_matches():
    sym = SceneSymmetry.from_name("D4")
    cond = regular(fiber(sym), 4)
    unet = ConditionalUnet1D(sym, ABS_ACTION, cond, down_dims=(4, 8)).eval()
    args = (torch.randn(2, 16, 10), torch.tensor([1, 5]), torch.randn(2, cond.size))
    torch.testing.assert_close(unet.export()(*args), unet(*args))
