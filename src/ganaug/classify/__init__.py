"""timm classifiers: backbone, albumentations pipelines, training and evaluation."""
