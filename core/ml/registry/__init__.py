"""Model registry: MLflow URIs, registered-model listing and promotion on evidence."""
