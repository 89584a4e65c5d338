"""Face models: a declarative spec -> a ``FaceNet`` (embedding + identity classifier).

    from tinyface.models import build_student, build_teacher, format_spec, summary, format_summary
    student = build_student(num_classes=158, seed=0)     # 16x16 faces, <= 0.15 MB
    print(format_spec(student.spec))                     # JSON: change it, build_model(it)
    print(format_summary(summary(student)))              # layers, shapes, params, FLOPs/face

    teacher = load_pretrained("dlib-resnet")             # dlib's ResNet, 150x150 -> 128-d

Modules: ``spec`` (spec checking, printing and the layers it builds), ``facenet`` (the
two-head model), ``zoo`` (the default teacher and student, dlib's ResNet), ``summary``
(per-layer table), ``weights`` (dlib's weight files: where, checks, dequantisation),
``pretrained`` (those weights in the zoo's dlib-resnet).
"""
from tinyface.models.spec import (Residual, SpecError, build_features, format_spec,
                                  normalize_spec, parse_spec, trunk_shapes)
from tinyface.models.facenet import FaceNet, build_model
from tinyface.models.zoo import (LFW158_CLASSES, STUDENT_MAX_PARAMS, TEACHER_MIN_RATIO, ZOO,
                                 build_student, build_teacher, dlib_resnet_spec, spec_by_name,
                                 student_spec, teacher_lite_spec, teacher_spec)
from tinyface.models.pretrained import PRETRAINED, embed_faces, load_pretrained
from tinyface.models.summary import format_summary, layer_flops, summary, totals
from tinyface.models.zoo import (PAPER_FACES_PER_S, PAPER_STUDENT_BYTES, PAPER_STUDENT_MB,
                                 STUDENT_STAGES, TEACHER_STAGES)
from tinyface.models.pretrained import DLIB_MEAN_RGB, fold_input_normalisation, resize_faces
from tinyface.models.dlib_dat import compare_with_manifest, read_dlib_dat
from tinyface.models.fused import FusedNet
from tinyface.models.weights import (WeightsError, find_weights_dir, format_manifest,
                                     read_manifest, read_manifest_weights)

__all__ = ["FaceNet", "build_model", "Residual", "SpecError", "build_features", "format_spec",
           "normalize_spec", "parse_spec", "trunk_shapes", "LFW158_CLASSES",
           "STUDENT_MAX_PARAMS", "TEACHER_MIN_RATIO", "ZOO", "build_student", "build_teacher",
           "spec_by_name", "student_spec", "teacher_spec", "teacher_lite_spec",
           "format_summary", "layer_flops", "summary", "totals", "dlib_resnet_spec",
           "PRETRAINED", "embed_faces", "load_pretrained"]
__all__ += ["PAPER_FACES_PER_S", "PAPER_STUDENT_BYTES", "PAPER_STUDENT_MB", "STUDENT_STAGES",
            "TEACHER_STAGES", "DLIB_MEAN_RGB", "fold_input_normalisation", "resize_faces",
            "compare_with_manifest", "read_dlib_dat", "WeightsError", "find_weights_dir",
            "format_manifest", "read_manifest", "read_manifest_weights", "FusedNet"]
