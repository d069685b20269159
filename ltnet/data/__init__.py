"""Data handling: reading and checking files, geometry, intensity normalisation, pre-alignment."""
