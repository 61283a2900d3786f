"""Random-crop augmentation: what it does to a batch, the Trainer's use of it, resume, recipes."""

import pytest
import torch

from parry.defenses.training import PGDAT, OptimizerSpec, RandomCrop, Trainer
from parry.defenses.training.recipes import RECIPES, build, get_recipe
from parry.zoo import load_checkpoint, make_classifier
from synthetic import assert_same_weights, interrupt_at, patches


def shifted(x, dy, dx):
    """``x`` moved by (dy, dx) pixels with zero fill."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_every_image_is_its_own_shift_by_at_most_the_padding_and_shifts_vary():
    x = torch.rand(64, 3, 9, 7)
    out = RandomCrop(2)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    seen = set()
    for i in range(64):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(out[i], shifted(x[i], dy, dx))]
        assert len(matches) == 1, i
        seen.add(matches[0])
    assert len(seen) >= 15  # of the 25 shifts, drawn uniformly


def test_flip_mirrors_about_half_of_the_images_and_padding_zero_keeps_them():
    x = torch.rand(200, 1, 5, 5)
    out = RandomCrop(0, flip=True)(x, torch.Generator().manual_seed(1))
    same = torch.tensor([torch.equal(a, b) for a, b in zip(out, x)])
    mirrored = torch.tensor([torch.equal(a, b.flip(-1)) for a, b in zip(out, x)])
    assert bool((same ^ mirrored).all())
    assert 70 <= int(mirrored.sum()) <= 130
    assert torch.equal(RandomCrop(0)(x, torch.Generator()), x)


def test_the_generator_decides_the_crops():
    x = torch.rand(16, 1, 8, 8)
    a = RandomCrop(3, flip=True)(x, torch.Generator().manual_seed(5))
    b = RandomCrop(3, flip=True)(x, torch.Generator().manual_seed(5))
    c = RandomCrop(3, flip=True)(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("kwargs", [{"padding": -1}, {"padding": 1.5}, {"padding": True}, {"padding": 2, "flip": 1}])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError, match="augment"):
        RandomCrop(**kwargs)


def test_a_batch_that_is_not_images_is_refused():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        RandomCrop(2)(torch.rand(4, 784), torch.Generator())


def lenet(seed=0):
    torch.manual_seed(seed)
    return make_classifier("lenet", "mnist")


def trainer(model, out_dir, callback=None, augment=RandomCrop(2, flip=True)):
    return Trainer(model, PGDAT(0.1, steps=2), optimizer=OptimizerSpec("sgd", lr=0.05), epochs=2, batch_size=16,
                   seed=3, out_dir=out_dir, architecture="lenet", dataset="mnist", save_every=1, progress=False,
                   callback=callback, augment=augment)


def test_trainer_trains_on_the_crops_records_them_and_resumes_to_the_same_weights(tmp_path):
    data = patches(40, 2)
    reference = lenet()
    trainer(reference, tmp_path / "full").fit(data)
    _, meta = load_checkpoint(tmp_path / "full" / "last")
    assert meta["recipe"]["augment"] == {"padding": 2, "flip": True}
    plain = lenet()
    trainer(plain, tmp_path / "plain", augment=None).fit(data)
    assert "augment" not in load_checkpoint(tmp_path / "plain" / "last")[1]["recipe"]
    assert any(not torch.equal(a, b) for a, b in zip(reference.state_dict().values(), plain.state_dict().values()))

    with pytest.raises(KeyboardInterrupt):
        trainer(lenet(), tmp_path / "cut", interrupt_at(3)).fit(data)
    resumed = lenet(seed=7)
    trainer(resumed, tmp_path / "cut").fit(data, resume=True)
    assert_same_weights(reference, resumed)


def test_trainer_refuses_an_augmentation_that_is_not_a_random_crop():
    with pytest.raises(ValueError, match="augment"):
        Trainer(lenet(), PGDAT(0.1), epochs=1, progress=False, augment={"padding": 2})


def test_recipes_build_their_augmentation_and_refuse_bad_ones():
    crop = RECIPES["fashion-pgd-at-ema-madry-crop"]
    assert build(crop)[2]["augment"] == RandomCrop(2)
    assert crop.params()["augment"] == {"padding": 2}
    assert build(RECIPES["fashion-pgd-at-ema-madry"])[2]["augment"] is None
    assert "augment" not in RECIPES["fashion-pgd-at-ema-madry"].params()  # earlier runs' sidecars still match
    for bad in ({"padding": -2}, {"pad": 2}, 2):
        with pytest.raises(ValueError, match="augment"):
            get_recipe("fashion-pgd-at-ema", augment=bad)
