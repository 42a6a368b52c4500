"""The layer types vvd.export maps to the runtime's (schema/model.schema.json)."""

SUPPORTED = ("nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, "
             "nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear, nn.Dropout and nn.Identity, "
             "in nn.Sequential containers or called one after another by a forward that "
             "torch.fx can trace")
