"""Pure learning logic: no I/O, so tests drive it with plain values."""
