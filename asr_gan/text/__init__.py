"""Text side: words -> phones (CMUdict + espeak-ng G2P), phone inventory, KenLM n-gram LMs.

  normalize.py  raw text -> normalised words (numbers spelled out; non-UTF-8 lines reported, skipped)
  g2p.py        espeak-ng IPA -> 39 ARPAbet phones, for words CMUdict lacks
  lexicon.py    CMUdict + G2P lexicon, `text/lexicon.txt`
  phones.py     PhoneInventory (`text/phones.txt`), silence insertion
  lm.py         lmplz / build_binary, NgramLM queries
  prepare.py    everything under `text/` for a recipe; `python -m asr_gan.text`
"""

from asr_gan.text.phones import SILENCE, PhoneInventory, add_silences

__all__ = ["SILENCE", "PhoneInventory", "add_silences"]
