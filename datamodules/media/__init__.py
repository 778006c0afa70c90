"""Pixels and geometry: video/image reading, face detection and alignment, region masks, blending."""
