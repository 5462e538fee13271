"""Synthetic analytics traffic for demos and benchmarks (`studyshelf analytics generate`)."""
