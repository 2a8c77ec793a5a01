"""The laboratory: tools that diagnose why a learner fails, kept apart from the pipeline a user runs.

Nothing in the product packages (features, text, models, train, decode, scoring, results) and no default recipe
stage imports from here; these modules import the product freely. Each keeps its `python -m asr_gan.lab.<name>`
command, and docs/gan_investigation.md holds the experiments that used them.

    decipher.py            phone labels from k-means cluster ids and the text's bigram (HMM + EM): a label-free
                           learner, and the GAN's optional warm start (`warm_start_labels`)
    phone_hmm.py           the decipherment's phone HMM: forward-backward, Viterbi, EM starts, EM with restarts
    label_start.py         the decipherment's EM start from labels of every row (and noisy variants of it)
    context_hmm.py         the decipherment's model when a segment's clusters depend on the next phone too
    trigram_hmm.py         the decipherment over the text's phone trigram
    alternate.py           decipherment <-> CTC student alternation
    rename_phones.py       the best one-to-one renaming of a decipherment's phones (its distance to the truth)
    row_labels.py          a CTC model's phone for every segment row
    units.py               the cluster ids a decipherment read, as one-hot feature rows
    posteriors.py          a supervised model's log-posteriors as features: the GAN's "oracle features"
    oracle_segments.py     segments cut at the reference phones by forced alignment
    check_discriminator.py does the discriminator tell real from generated on a trained run?
"""
