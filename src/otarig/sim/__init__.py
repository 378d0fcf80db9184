"""The simulated bench: virtual clock, Device OS model, cloud stand-in, simulated instruments."""
