"""asr_gan: unsupervised speech recognition from unpaired audio and text.

Data flow, one sub-package per step:
  audio/     files on disk -> mono float waveforms at 16 kHz
  features/  waveforms -> per-frame features -> segments (PCA, k-means, pooling)
  text/      words -> phones (lexicon, G2P), phone and word n-gram LMs
  models/    generator (features -> phone logits), discriminator, reverse generator
  train/     GAN and supervised training loops, label-free model selection
  decode/    phone logits -> phones -> words; model bundle; self-training
  scoring/   hypotheses vs references -> PER / WER; how phone-like a front-end's units are
  results/   an experiment's scores -> RESULTS.md, pictures
  lab/       diagnosis and research tools; the pipeline never imports them
Shared by every step: manifest.py (utterance lists), ctm.py (time-marked phones), edits.py (edit counts).
"""

__version__ = "0.1.0"
