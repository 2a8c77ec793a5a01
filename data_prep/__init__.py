"""Corpus preparation: corpora on disk -> manifests (JSONL, asr_gan.manifest.Utterance)."""
