"""A cross-lingual phone encoder: the front-end whose units are phone-like, learnt without English labels.

Sentences of eight other languages (Debian word lists) are spoken by espeak-ng with its own phonemes as targets
(`corpus.py`, `phonemes.py`), a conv network learns to recognise them with CTC (`model.py`, `train.py`), and
its layers become features (`frontend.py`; `python -m asr_gan.features extract --frontend encoder`). The
package ships a trained checkpoint (`checkpoint.SHIPPED_CHECKPOINT`); `python -m asr_gan.features.encoder
train` reproduces it.
"""

from asr_gan.features.encoder.checkpoint import ENCODER_LAYER, SHIPPED_CHECKPOINT, load_encoder

__all__ = ["ENCODER_LAYER", "SHIPPED_CHECKPOINT", "load_encoder"]
