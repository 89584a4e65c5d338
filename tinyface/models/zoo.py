"""The default teacher and student specs.

Student (16x16 faces), within the paper's 0.15 MB budget. We read 0.15 MB as
0.15 * 2**20 bytes = 157,286 bytes = 39,321 float32 parameters (``STUDENT_MAX_PARAMS``),
the 158-way LFW-158 classifier included::

    conv3x3 16, 16, max pool, 32, 32, max pool, 32 (BN + ReLU after each conv),
    global average pool, Linear(32, 64) + BatchNorm1d (the 64-d embedding),
    Linear(64, 158)                                      -> 38,670 parameters

The 128-d embedding of the bench's reference student does not fit: its classifier
alone would take 128 * 158 + 158 = 20,382 parameters.

Teacher (64x64 faces), VGG-style, after the calibration network (a plain PyTorch
teacher with these convs and a 256-d embedding reached 89% top-1 on LFW-158)::

    conv3x3 32, 32, M, 64, 64, M, 128, 128, M, 256, 256 (BN + ReLU after each conv),
    global average pool, Linear(256, 256) + BatchNorm1d, Linear(256, K)

It costs about 0.42 GFLOP per face forward (about 1.3 GFLOP forward + backward).
``teacher_lite_spec`` has the same layers and parameters but a stride-2 first conv:
about 4x fewer FLOPs, for quick runs.

The pretrained teacher (150x150 faces), dlib's ResNet face recognition network, with
the weights that ``tinyface.models.load_pretrained("dlib-resnet")`` reads::

    conv7x7 32 stride 2 valid, max pool 3x3 stride 2,
    res 32 x3, res 64 down + 64 x3, res 128 down + 128 x2, res 256 down + 256 x2,
    res 256 down (each conv: bias, per-channel affine, ReLU; "down": 3x3 stride 2
    valid, shortcut 2x2 average pool with zero-filled channels),
    global average pool, Linear(256, 128) without bias: the 128-d face descriptor

It has 5,614,592 parameters before its classifier and costs 0.54 GFLOP per face
(``python -m tinyface info dlib-resnet``).
"""
from tinyface.models.facenet import build_model

# the paper's student: 0.15 MB (read as 0.15 * 2**20 bytes), 418 faces/s on its CPU
PAPER_STUDENT_MB = 0.15
PAPER_STUDENT_BYTES = int(PAPER_STUDENT_MB * 2 ** 20)        # 157,286 bytes
PAPER_FACES_PER_S = 418.0
STUDENT_MAX_PARAMS = PAPER_STUDENT_BYTES // 4                # 39,321 float32 parameters = 0.15 MB
TEACHER_MIN_RATIO = 20                             # teacher >= 20x the student's parameters
LFW158_CLASSES = 158

STUDENT_STAGES = [16, 16, "M", 32, 32, "M", 32]
TEACHER_STAGES = [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256]
TEACHER_LITE_STAGES = [{"conv": 32, "kernel": 3, "stride": 2}] + TEACHER_STAGES[1:]


def _down(channels):
    """dlib's downsampling block: 3x3 stride 2 valid, pooled zero-filled shortcut."""
    return {"res": channels, "stride": 2, "padding": 0, "shortcut": "pool"}


DLIB_RESNET_STAGES = ([{"conv": 32, "kernel": 7, "stride": 2, "padding": 0},
                       {"pool": "max", "kernel": 3, "stride": 2}]
                      + [{"res": 32}] * 3 + [_down(64)] + [{"res": 64}] * 3
                      + [_down(128)] + [{"res": 128}] * 2 + [_down(256)] + [{"res": 256}] * 2
                      + [_down(256)])
DLIB_RESNET_SIZE = 150


def student_spec(num_classes=LFW158_CLASSES, input_size=16):
    """The deployable student: 16x16 faces -> 64-d embedding -> ``num_classes``."""
    return {"name": "student", "input_size": input_size, "in_channels": 3,
            "stages": list(STUDENT_STAGES), "embedding_dim": 64, "embedding_norm": "bn",
            "num_classes": num_classes, "norm": "bn", "act": "relu", "dropout": 0.0}


def teacher_spec(num_classes, input_size=64):
    """The VGG-style teacher: 64x64 faces -> 256-d embedding -> ``num_classes``."""
    return {"name": "teacher", "input_size": input_size, "in_channels": 3,
            "stages": list(TEACHER_STAGES), "embedding_dim": 256, "embedding_norm": "bn",
            "num_classes": num_classes, "norm": "bn", "act": "relu", "dropout": 0.0}


def teacher_lite_spec(num_classes, input_size=64):
    """The teacher with a stride-2 first conv: same parameters, ~4x fewer FLOPs."""
    spec = teacher_spec(num_classes, input_size)
    spec.update(name="teacher-lite", stages=[dict(s) if isinstance(s, dict) else s
                                             for s in TEACHER_LITE_STAGES])
    return spec


def dlib_resnet_spec(num_classes=1, input_size=DLIB_RESNET_SIZE):
    """dlib's ResNet: 150x150 faces -> 128-d descriptor (-> ``num_classes``, a head to fit)."""
    return {"name": "dlib-resnet", "input_size": input_size, "in_channels": 3,
            "stages": [dict(s) for s in DLIB_RESNET_STAGES], "embedding_dim": 128,
            "embedding_norm": "none", "embedding_bias": False, "num_classes": num_classes,
            "norm": "affine", "act": "relu", "dropout": 0.0}


def build_student(num_classes=LFW158_CLASSES, seed=0):
    return build_model(student_spec(num_classes), seed=seed)


def build_teacher(num_classes, seed=0):
    return build_model(teacher_spec(num_classes), seed=seed)


# name -> spec function of num_classes (what ``python -m tinyface info NAME`` accepts)
ZOO = {"student": student_spec, "teacher": teacher_spec, "teacher-lite": teacher_lite_spec,
       "dlib-resnet": dlib_resnet_spec}


def spec_by_name(name, num_classes=LFW158_CLASSES):
    """The zoo spec called ``name`` (``student``, ``teacher``, ``teacher-lite``,
    ``dlib-resnet``)."""
    if name not in ZOO:
        raise KeyError(f"unknown model {name!r}; known: {sorted(ZOO)}")
    return ZOO[name](num_classes)
