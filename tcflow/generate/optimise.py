"""Property-guided latent optimisation (as the paper did with CDVAE): gradient ascent on the
property head's predicted Tc in latent space, from given starting latents."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tcflow.generate.model import CDVAE


@dataclass
class OptimiseSettings:
    """steps: Adam steps (0 disables); lr: Adam learning rate in latent units;
    prior_weight: weight of 0.5*|z|^2 (keeps z where the decoder was trained; 0 = the paper's
    unconstrained ascent); decode_every: also decode every k-th step (0: only the last)."""

    steps: int = 100
    lr: float = 0.01
    prior_weight: float = 0.1
    decode_every: int = 0

    def decode_steps(self) -> list[int]:
        if self.steps == 0:
            return [0]
        if self.decode_every <= 0:
            return [self.steps]
        return list(range(self.decode_every, self.steps + 1, self.decode_every))


def optimise_latents(model: CDVAE, z0: torch.Tensor, os_: OptimiseSettings) -> dict[int, torch.Tensor]:
    """Latents (B, D) at each of ``os_.decode_steps()``, keyed by step. Maximises predicted Tc (K)."""
    wanted = set(os_.decode_steps())
    z = z0.detach().clone().requires_grad_(True)
    out = {0: z0.detach().clone()} if 0 in wanted else {}
    if os_.steps == 0:
        return out
    for p in model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam([z], lr=os_.lr)
    tc_scale = model.scalers.tc_std
    for step in range(1, os_.steps + 1):
        opt.zero_grad()
        loss = -(model.predict_tc(z) / tc_scale).sum() + 0.5 * os_.prior_weight * (z ** 2).sum()
        loss.backward()
        opt.step()
        if step in wanted:
            out[step] = z.detach().clone()
    for p in model.parameters():
        p.requires_grad_(True)
    return out
