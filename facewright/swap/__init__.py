"""Swap: put a trained model's face into every frame, color matched, blended and smoothed."""
