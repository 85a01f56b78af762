"""Checks that need an in-spec Apple device: chip detection, speed-up timing, compute-plan placement."""
