"""From phone logits to words: decoders, the model bundle, `python -m asr_gan.decode`, self-training."""
