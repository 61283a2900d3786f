"""The logit ensemble: the mean of its members' logits, saved and loaded as one checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from parry.cli import main
from parry.zoo import load_checkpoint, make_classifier, save_checkpoint
from parry.zoo.logit_ensemble import LogitEnsemble, save_ensemble


def saved(tmp_path, name, arch="lenet", dataset="mnist", seed=0, flip=False):
    torch.manual_seed(seed)
    clf = make_classifier(arch, dataset)
    recipe = {"name": name, **({"augment": {"padding": 0, "flip": True}} if flip else {})}
    save_checkpoint(tmp_path / name, clf, architecture=arch, arch_kwargs={}, dataset=dataset,
                    recipe=recipe, metrics={})
    return clf.eval(), tmp_path / name


def test_saved_ensemble_reloads_as_the_mean_of_its_members_logits(tmp_path):
    (a, path_a), (b, path_b) = saved(tmp_path, "a", seed=1), saved(tmp_path, "b", "small-cnn", seed=2)
    save_ensemble([path_a, path_b], tmp_path / "ens")
    ensemble, meta = load_checkpoint(tmp_path / "ens")
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(ensemble(x), (a(x) + b(x)) / 2, atol=1e-6)
    assert meta["architecture"] == "logit-ensemble" and meta["dataset"] == "mnist"
    assert [m["architecture"] for m in meta["arch_kwargs"]["members"]] == ["lenet", "small-cnn"]
    members = meta["recipe"]["ensemble_of"]
    assert [m["recipe"] for m in members] == [{"name": "a"}, {"name": "b"}]
    assert members[0]["sha256"] == json.loads((tmp_path / "a.json").read_text())["sha256"]


def test_gradients_flow_through_every_member():
    torch.manual_seed(0)
    net = LogitEnsemble([{"architecture": "lenet", "arch_kwargs": {}}] * 2, in_channels=1, num_classes=10)
    net(torch.rand(2, 1, 28, 28)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for m in net.members for p in m.parameters()
               if p.ndim > 1)


def test_flip_ensemble_averages_each_member_over_the_input_and_its_mirror_image(tmp_path):
    (a, path_a), (b, path_b) = saved(tmp_path, "a", seed=1, flip=True), saved(tmp_path, "b", seed=2, flip=True)
    save_ensemble([path_a], tmp_path / "one", flip=True)
    save_ensemble([path_a, path_b], tmp_path / "two", flip=True)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        single = load_checkpoint(tmp_path / "one")[0]
        assert torch.allclose(single(x), (a(x) + a(x.flip(-1))) / 2, atol=1e-6)
        assert torch.allclose(single(x), single(x.flip(-1)), atol=1e-6)  # mirror-invariant by construction
        both, meta = load_checkpoint(tmp_path / "two")
        expected = (a(x) + a(x.flip(-1)) + b(x) + b(x.flip(-1))) / 4
        assert torch.allclose(both(x), expected, atol=1e-6)
        assert not torch.allclose(both(x), (a(x) + b(x)) / 2, atol=1e-4)
    assert meta["arch_kwargs"]["flip"] is True and meta["recipe"]["flip"] is True


def test_flip_ensemble_refuses_members_trained_without_mirrored_images(tmp_path):
    _, mirrored = saved(tmp_path, "m", flip=True)
    _, plain = saved(tmp_path, "p")
    with pytest.raises(ValueError, match="not trained on mirrored images"):
        save_ensemble([mirrored, plain], tmp_path / "x", flip=True)
    with pytest.raises(ValueError, match="flip: expected True or False"):
        LogitEnsemble([{"architecture": "lenet", "arch_kwargs": {}}], in_channels=1, num_classes=10, flip="yes")
    with pytest.raises(ValueError, match="flip: expected True or False"):
        save_ensemble([mirrored], tmp_path / "x", flip=1)
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("members, match", [
    ([{"architecture": "lenet", "arch_kwargs": {}}], "at least two"),
    ("lenet", "at least two"),
    ([{"architecture": "lenet"}, {"architecture": "lenet", "arch_kwargs": {}}], r"members\[0\]"),
    ([{"architecture": "lenet", "arch_kwargs": {}}, {"architecture": "logit-ensemble", "arch_kwargs": {}}],
     "cannot be a member"),
    ([{"architecture": "lenet", "arch_kwargs": {}}, {"architecture": "nope", "arch_kwargs": {}}], "unknown name"),
])
def test_bad_members_are_refused(members, match):
    with pytest.raises(ValueError, match=match):
        LogitEnsemble(members, in_channels=1, num_classes=10)


def test_members_must_share_data_set_and_classes(tmp_path):
    _, mnist = saved(tmp_path, "m")
    _, fashion = saved(tmp_path, "f", dataset="fashion-mnist")
    _, cifar = saved(tmp_path, "c", "cifar-cnn", "cifar10")
    with pytest.raises(ValueError, match="must share"):
        save_ensemble([mnist, fashion], tmp_path / "x")
    with pytest.raises(ValueError, match="must share"):
        save_ensemble([mnist, cifar], tmp_path / "x")
    with pytest.raises(ValueError, match="at least two"):
        save_ensemble([mnist], tmp_path / "x")
    assert not (tmp_path / "x.json").exists()


def test_cli_combines_checkpoints(tmp_path):
    (_, a), (_, b) = saved(tmp_path, "a", seed=1), saved(tmp_path, "b", seed=2)
    _, mirrored = saved(tmp_path, "m", flip=True)
    done = CliRunner().invoke(main, ["ensemble", str(mirrored), "--flip", "--out", str(tmp_path / "tte")])
    assert done.exit_code == 0, done.output
    assert "mean of 1 member's logits" in done.output and "mirror images" in done.output
    assert load_checkpoint(tmp_path / "tte")[1]["arch_kwargs"]["flip"] is True
    done = CliRunner().invoke(main, ["ensemble", str(a), str(b), "--out", str(tmp_path / "ens")])
    assert done.exit_code == 0 and "mean of 2 members' logits" in done.output, done.output
    assert load_checkpoint(tmp_path / "ens")[1]["architecture"] == "logit-ensemble"
    refused = CliRunner().invoke(main, ["ensemble", str(a), "--out", str(tmp_path / "one")])
    assert refused.exit_code != 0 and "at least two" in refused.output
    refused = CliRunner().invoke(main, ["ensemble", str(a), "--flip", "--out", str(tmp_path / "one")])
    assert refused.exit_code != 0 and "not trained on mirrored images" in refused.output


def test_train_does_not_offer_the_ensemble_as_an_architecture(tmp_path):
    refused = CliRunner().invoke(main, ["train", "--arch", "logit-ensemble", "--dataset", "mnist",
                                        "--out", str(tmp_path / "e")])
    assert refused.exit_code != 0 and "Invalid value for '--arch'" in refused.output
    assert not (tmp_path / "e.json").exists()
