"""Benchmarks: speed and quality figures, printed; never asserted in tests.

They are clients of the public API (facewright.api), as a user would be: sample media come through
`api.asset`, and the protocols that need a workspace drive `api.extract`, `api.train`, `api.swap`. The speed
benchmarks of one stage time that stage's own code beside it.
"""

SAMPLE_A = "WolfgangLanger_Pexels.mp4"  # person A of the sample pair: one woman, 472 frames, hands at times
SAMPLE_B = "single_face.mp4"  # person B: one man talking, 72 frames
