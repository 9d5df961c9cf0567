# Written by `make models` (closet_pipeline.train.export): the sha256 of each committed model file.
PINS = {'garment-classifier.onnx': '3c77cf3bd561124cb425995b3af03066165259924c1bf98c125c763ddc7012b0',
 'garment-parser.onnx': 'b8a017a66625a2402f6ea08b87b1571d75fbfbb53b2cf7e62b62e366dc679e89'}
