"""Built-in preprocess methods: one module per network, each defining ``image_preprocess(img_path, norm=True)``.

Pass a name from ``__all__`` to :func:`calibrator_custom.utils.image_preprocess_func` (or ``-n`` of the
command-line tools). Every method returns an NHWC batch of one image: float32 normalised with the
network's mean/std when ``norm=True`` (float models), or the raw pixels rounded to uint8 when
``norm=False`` (fixed/offline models, whose input_config.ini mean/std are folded into the model).
The table of methods is in docs/preprocess.md.
"""

__all__ = [
    "caffe_resnet18",
    "caffe_resnet50",
    "caffe_mobilenet_v2",
    "mobilenet_v1",
    "mobilenet_v2",
    "resnet_v2_50",
    "inception_v3",
    "onnx_resnet18",
    "onnx_mobilenetv2",
    "face_detection_short_range",
    "face_landmark",
    "hand_landmark_lite",
    "iris_landmark",
    "palm_detection_lite",
    "pose_detection",
]
