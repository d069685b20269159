"""The LT-Net method: networks, spatial transformer and losses (torch only, no file I/O)."""
