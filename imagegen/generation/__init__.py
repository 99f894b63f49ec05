"""The diffusion engine (diffusers, torch) and its speed-ups; the offline tiny model."""
