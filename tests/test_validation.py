"""Bad input gets a clear exception naming the argument, never a wrong number."""

import pytest
import torch
from torch import nn

from parry import Classifier
from parry.attacks import FGSM, MIFGSM, PGD
from parry.metrics import accuracy, predict


def model_and_data(n: int = 4):
    torch.manual_seed(0)
    clf = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), num_classes=3, input_shape=(1, 4, 4))
    return clf, torch.rand(n, 1, 4, 4), torch.tensor([0, 1, 2, 0][:n])


class SoftmaxLess(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.out = out
        self.lin = nn.Linear(16, 3)

    def forward(self, x):
        return self.out(self.lin(x.flatten(1)))


_clf, _x, _y = model_and_data()

BAD_CALLS = [
    ("nan", lambda: PGD(0.1)(_clf, _x.clone().index_fill_(0, torch.tensor([0]), float("nan")), _y), "x: contains NaN"),
    ("inf", lambda: PGD(0.1)(_clf, _x.clone().index_fill_(0, torch.tensor([1]), float("inf")), _y), "x: contains NaN or inf"),
    ("above bounds", lambda: PGD(0.1)(_clf, _x * 255, _y), r"x: values must lie in the bounds"),
    ("below bounds", lambda: PGD(0.1)(_clf, _x - 1, _y), r"x: values must lie in the bounds"),
    ("int dtype", lambda: PGD(0.1)(_clf, (_x * 255).to(torch.uint8), _y), "x: expected a floating-point"),
    ("not a tensor", lambda: PGD(0.1)(_clf, _x.numpy(), _y), "x: expected a torch.Tensor"),
    ("rank 1", lambda: PGD(0.1)(_clf, _x.flatten(), _y), "x: expected a batch"),
    ("wrong sample shape", lambda: PGD(0.1)(_clf, _x.view(4, 1, 2, 8), _y), "x: expected per-sample shape"),
    ("empty batch", lambda: PGD(0.1)(_clf, _x[:0], _y[:0]), "x: the batch is empty"),
    ("negative eps", lambda: PGD(-0.1), "eps: must be finite and >= 0"),
    ("nan eps", lambda: FGSM(float("nan")), "eps"),
    ("infinite eps", lambda: PGD(float("inf")), "eps: must be finite"),
    ("missing eps", lambda: PGD(None), "eps: PGD needs a radius"),
    ("string eps", lambda: PGD("0.3"), "eps"),
    ("unknown norm", lambda: PGD(0.1, norm="l3"), "norm: unknown norm"),
    ("norm unsupported by attack", lambda: MIFGSM(0.1, norm="l1"), "norm: MIFGSM supports"),
    ("label out of range", lambda: PGD(0.1)(_clf, _x, torch.tensor([0, 1, 2, 3])), "y: labels must lie in"),
    ("negative label", lambda: PGD(0.1)(_clf, _x, torch.tensor([0, -1, 2, 0])), "y: labels must lie in"),
    ("labels wrong length", lambda: PGD(0.1)(_clf, _x, _y[:3]), r"y: expected shape \(4,\)"),
    ("float labels", lambda: PGD(0.1)(_clf, _x, _y.float()), "y: expected an integer tensor"),
    ("target equals y", lambda: PGD(0.1)(_clf, _x, _y, target=_y.clone()), "target: equals the true label"),
    ("target out of range", lambda: PGD(0.1)(_clf, _x, _y, target=torch.tensor([5, 0, 0, 1])), "target: labels must lie in"),
    ("zero steps", lambda: PGD(0.1, steps=0), "steps: expected an int >= 1"),
    ("negative alpha", lambda: PGD(0.1, alpha=-1.0), "alpha: must be finite"),
    ("unknown loss", lambda: PGD(0.1, loss="hinge"), "loss: unknown loss"),
    ("per-sample eps count", lambda: PGD(torch.tensor([0.1, 0.2]))(_clf, _x, _y), "eps: 2 per-sample radii for 4 inputs"),
    ("model output rank", lambda: PGD(0.1)(Classifier(SoftmaxLess(lambda z: z.sum(1))), _x, _y),
     r"model: must return logits of shape \(N, num_classes\)"),
    ("model output nan", lambda: PGD(0.1)(Classifier(SoftmaxLess(lambda z: z * float("nan"))), _x, _y),
     "model: returned NaN or inf"),
    ("model output classes", lambda: PGD(0.1)(Classifier(SoftmaxLess(lambda z: z), num_classes=4), _x, _y),
     "model: the classifier declares 4 classes but returned 3"),
    ("single logit", lambda: PGD(0.1)(Classifier(SoftmaxLess(lambda z: z[:, :1])), _x, _y),
     "model: must return at least 2 logits"),
    ("not a module", lambda: PGD(0.1)(lambda v: v, _x, _y), "model: expected a torch.nn.Module"),
    ("bad batch size", lambda: predict(_clf, _x, batch_size=0), "batch_size"),
    ("accuracy labels", lambda: accuracy(_clf, _x, _y[:2]), r"y: expected shape \(4,\)"),
    ("bad std", lambda: Classifier(nn.Linear(2, 2), std=[0.0]), "std: must be > 0"),
    ("bad num_classes", lambda: Classifier(nn.Linear(2, 2), num_classes=1), "num_classes"),
]


@pytest.mark.parametrize("case,call,message", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_refused_with_a_message_naming_the_argument(case, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_there_are_at_least_fifteen_distinct_bad_inputs():
    assert len(BAD_CALLS) >= 15


def test_subclasses_cannot_override_the_final_call():
    with pytest.raises(TypeError, match="must not override __call__"):
        class Sneaky(PGD):  # noqa: F841
            def __call__(self, *args, **kwargs):
                return None
