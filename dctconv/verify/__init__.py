"""Verification: the transform's checks and the comparison of files against images."""
