"""Building blocks of the embedded demo benchmark (``python -m datamodules.demo``).

* ``sources``: the ten real faces that ship inside installed packages, as aligned portraits + landmarks.
* ``manipulations``: face swap, region replacement, self-blending, upsampling artifacts (exact masks).
* ``domains``: the capture pipelines and manipulation mixes that make the three domains differ.
* ``video``: head-motion trajectories, frame rendering and atomic video writing.
* ``plan``: which videos each official layout gets, with identity-disjoint splits.
"""
