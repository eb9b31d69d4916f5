"""Measurement and pictures: metrics, the rate-distortion sweep, figures and mosaics."""
