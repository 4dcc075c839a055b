"""Sample-quality metrics and the feature networks they use."""
