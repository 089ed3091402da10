"""Domain discovery: the names to validate, found where they live (files, Kubernetes)."""
