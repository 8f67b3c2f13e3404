"""facewright: a consent-first face-swap toolkit. The public API lives in facewright.api."""
__version__ = "0.1.0"
