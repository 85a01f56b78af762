"""Compressed weights, proven: coremltools' post-training compression applied to a converted program
(palettization, linear quantization, pruning and their joint forms), the three-way comparison that
splits compression loss from conversion and fp16 loss, and per-layer sensitivity with a mixed-bit search."""
