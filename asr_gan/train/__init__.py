"""Training: the cycle-consistent GAN (`python -m asr_gan.train`), supervised CTC (`asr_gan.train.ctc`),
sweeps with label-free selection (`asr_gan.train.sweep`).

    config.py      GanConfig dataclasses, YAML + command-line overrides
    data.py        device-resident feature and phone-text banks, batch sampling
    merge.py       merging runs of one argmax phone (what the discriminator sees)
    losses.py      adversarial, gradient penalty, smoothness, diversity, cycle losses
    selection.py   weighted_lm_ppl: label-free model selection on unlabelled audio
    checkpoint.py  atomic checkpoints; load_generator for decoding
    distributed.py torchrun process groups, gradient averaging
    gan.py         the training loop
    decipher.py    label-free phone labels from cluster ids and the text's bigram (HMM + EM), to warm-start the GAN
    context_hmm.py the decipherment's model when a segment's clusters depend on the next phone too
"""
