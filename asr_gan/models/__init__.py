"""Pure nn.Modules (no training logic): the GAN's three networks and the CTC phone models.

    generator.py          features (B, T, D) -> phone logits (B, T', P)
    discriminator.py      phone distributions or features (B, T, C) -> realness score (B,)
    reverse_generator.py  phone distributions (B, L, P) -> features (B, L * stride, D)
    ctc_model.py          features -> phone + blank logits (supervised topline, self-training student)
"""

from asr_gan.models.discriminator import Discriminator
from asr_gan.models.generator import Generator
from asr_gan.models.reverse_generator import ReverseGenerator

__all__ = ["Discriminator", "Generator", "ReverseGenerator"]
