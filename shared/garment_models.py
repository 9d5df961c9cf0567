# Written by `make models` (closet_pipeline.train.export): the sha256 of each committed model file.
PINS = {'garment-classifier.onnx': 'f3d87dbf744ea1f0a9a875c1f8eaf02c3fa0692c4eabef9889661071ab8df6b3',
 'garment-parser.onnx': '099b981fc8bd22781f57296109a67bc57ecfa7d18231d17356eed82ffa83dd07'}
