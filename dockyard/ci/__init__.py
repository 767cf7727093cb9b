"""Continuous integration: the testing image and its service containers, image caches, provider configs."""
