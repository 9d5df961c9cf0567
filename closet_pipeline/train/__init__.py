"""Training the garment models (`make models`): data splits, training, ONNX export, evaluation."""
