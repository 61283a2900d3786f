"""Reference architectures, checkpoints (safetensors + JSON sidecar) and a plain trainer."""

from parry.zoo.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from parry.zoo.cifar_cnn import CifarCNN
from parry.zoo.lenet import LeNet
from parry.zoo.madry_mnist import MadryMNISTCNN
from parry.zoo.preact_resnet import PreActResNet18
from parry.zoo.registry import ARCHITECTURES, DATASET_INFO, build, make_classifier
from parry.zoo.small_cnn import SmallCNN
from parry.zoo.trainer import evaluate_accuracy, train_classifier

__all__ = [
    "ARCHITECTURES", "DATASET_INFO", "CheckpointError", "CifarCNN", "LeNet", "MadryMNISTCNN",
    "PreActResNet18", "SmallCNN", "build", "evaluate_accuracy", "load_checkpoint",
    "make_classifier", "read_metadata", "save_checkpoint", "train_classifier",
]
