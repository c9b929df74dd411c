"""Images end to end (issue 15): data folders, ImageNet checkpoints, training (head / freeze / full vs the
pixel baseline), evaluation with a worst-image grid, ONNX fp32/int8 export, serving and input drift.

The image *modality* (decoding, preprocessing, the baseline) is :mod:`transferops.modality.image`; this
stage holds what trains and runs models. Everything heavy is imported inside functions.
"""
