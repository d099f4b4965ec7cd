"""Built-in preprocess methods: one module per network, each defining ``image_preprocess(img_path, norm=True)``.

Pass a name from ``__all__`` to :func:`calibrator_custom.utils.image_preprocess_func` (or ``-n`` of the
command-line tools). Every method returns an NHWC batch of one image: float32 normalised with the
network's mean/std when ``norm=True`` (float models), or the raw pixels rounded to uint8 when
``norm=False`` (fixed/offline models, whose input_config.ini mean/std are folded into the model).
Methods named like the SDK's stock ones return the SDK's arrays (same values, dtype and shape,
quirks included: some give float64, some norm=False results are float32). The table is in
docs/preprocess.md.
"""

#: the SDK's stock method names (Scripts/calibrator/preprocess_method); same arrays as the SDK's files
SDK_METHODS = (
    "caffe_DenseNet_121",
    "caffe_DenseNet_201",
    "caffe_fda",
    "caffe_fda_1280x720",
    "caffe_fda_1920x1080",
    "caffe_fda_299x299",
    "caffe_fda_640x480",
    "caffe_fda_800x600",
    "caffe_fda_960x540",
    "caffe_fda_small_320x180",
    "caffe_fda_small_640x360",
    "caffe_fr",
    "caffe_fr_initab",
    "caffe_inception_BN_21k",
    "caffe_lancenet",
    "caffe_lenet",
    "caffe_mobilenet_v1_shicai",
    "caffe_mobilenet_v1_yolo_v3_7",
    "caffe_mobilenet_v2",
    "caffe_mobilenet_v2_shicai",
    "caffe_resnet101",
    "caffe_resnet152",
    "caffe_resnet18",
    "caffe_resnet50",
    "caffe_resnet50_conv",
    "caffe_resnext50",
    "caffe_rfcn",
    "caffe_squeezenet_v1",
    "caffe_squeezenet_v1_1",
    "caffe_ssd_mobilenet_v1",
    "caffe_ssd_mobilenet_v2_352",
    "caffe_ssd_mobilenet_v2_640",
    "caffe_ultra_fast_face",
    "caffe_uniview_od",
    "caffe_yolo_fastest",
    "caffe_yolo_v2",
    "caffe_yolo_v2_608",
    "caffe_yolo_v3_darknet_416",
    "caffe_yolo_v3_tiny",
    "deeplab_v3",
    "fir",
    "inception_v3",
    "mobilenet_v1",
    "mobilenet_v2",
    "nasnet",
    "onnx_classification",
    "onnx_eca_mobilenetv2",
    "onnx_mobilenetv2_w1",
    "onnx_mobilenetv3_large_w1",
    "onnx_resnet18",
    "onnx_resnet50",
    "onnx_shufflenetv2",
    "onnx_squeezenet",
    "onnx_ssd1200",
    "onnx_tiny_yolov3",
    "resnet_18",
    "resnet_v2_50",
    "shufflenet_v2",
    "ssd_mobilenet_v1",
    "ssdlite_mobilenet_v2",
    "vgg16",
    "yolo_v3_6",
    "yolo_v3_7",
    "yolo_v3_tiny",
    "yolov2",
    "yolov3",
)
#: methods of this package only (MediaPipe models, torchvision MobileNetV2)
OWN_METHODS = (
    "onnx_mobilenetv2",
    "face_detection_short_range",
    "face_landmark",
    "hand_landmark_lite",
    "iris_landmark",
    "palm_detection_lite",
    "pose_detection",
)

__all__ = [*SDK_METHODS, *OWN_METHODS]
