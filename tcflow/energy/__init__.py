"""Formation energy and energy above the convex hull: DFT elemental references and competing
phases through the DFT stage's own steps, the hull per candidate, and an MLIP column."""
