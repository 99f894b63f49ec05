"""What every image and prompt goes through: safety checks, C2PA signing, the output checker process."""
