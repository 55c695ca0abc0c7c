"""Screen stage: which generated samples go on to DFT, and the candidate set itself."""
