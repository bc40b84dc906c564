"""Frames, whoever makes or reads them: the frame itself, the one decoder, the region of interest."""
