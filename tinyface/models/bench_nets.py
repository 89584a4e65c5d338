"""The reference networks whose real layer shapes the kernel benchmark uses.

Reference student (input 3x16x16): conv3x3 3->16, 16->16, max pool; conv3x3 16->32,
32->32, max pool; conv3x3 32->64; batch norm + ReLU after each conv; global average
pool; linear 64->128.

Reference teacher (input 3x64x64), VGG-style: conv3x3 32-32, 64-64, 128-128, 256-256
with a max pool between stages, batch norm + ReLU after each conv, global average
pool, linear 256->256 (the embedding).
"""
from tinyface import nn

STUDENT_PLAN = [16, 16, "M", 32, 32, "M", 64]
TEACHER_PLAN = [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256]


def vgg_features(plan, in_channels=3):
    """Layers for a plan such as ``[16, 16, "M", 32]``: an int is conv3x3+BN+ReLU, "M" a 2x2 max pool."""
    layers, c = [], in_channels
    for item in plan:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU()]
            c = item
    return layers, c


def reference_student(embedding_dim=128, seed=0):
    """The core benchmark's student: input (N, 3, 16, 16) -> (N, embedding_dim)."""
    nn.manual_seed(seed)
    layers, c = vgg_features(STUDENT_PLAN)
    return nn.Sequential(*layers, nn.GlobalAvgPool2d(), nn.Linear(c, embedding_dim))


def reference_teacher(embedding_dim=256, seed=0):
    """A VGG-style teacher: input (N, 3, 64, 64) -> (N, embedding_dim)."""
    nn.manual_seed(seed)
    layers, c = vgg_features(TEACHER_PLAN)
    return nn.Sequential(*layers, nn.GlobalAvgPool2d(), nn.Linear(c, embedding_dim))
