# Written by `make models` (closet_pipeline.train.export): the sha256 of each committed model file.
PINS = {'garment-classifier.onnx': '813cd63cd475b06ad2e20052229cdeddccde41fbc0bcdaf9d2558fae458a763c',
 'garment-parser.onnx': '5cd52b8646f326aaa898ed4b8c0c93826e3044310ef4daf0a7f578782031ac0d'}
