# Written by `make models` (closet_pipeline.train.export): the sha256 of each committed model file.
PINS = {'garment-classifier.onnx': '813cd63cd475b06ad2e20052229cdeddccde41fbc0bcdaf9d2558fae458a763c',
 'garment-parser.onnx': '099b981fc8bd22781f57296109a67bc57ecfa7d18231d17356eed82ffa83dd07'}
