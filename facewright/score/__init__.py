"""`facewright score`: how good a swap is, frame by frame, measured against the footage it was made from."""
