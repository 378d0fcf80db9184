"""otarig: a hardware-in-the-loop OTA test rig for Particle Electron firmware."""

__version__ = "0.1.0"
