"""Audio files on disk -> mono float32 waveforms at the working sample rate."""

from asr_gan.audio.io import SAMPLE_RATE, AudioError, audio_info, load_audio

__all__ = ["SAMPLE_RATE", "AudioError", "audio_info", "load_audio"]
