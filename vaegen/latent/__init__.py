"""The latent space: prior draws and paths (sampling), the fitted prior (fit), the map (map), codes in files (codes)."""
