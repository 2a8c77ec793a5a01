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
    gan_step.py    one GAN update: batches, losses, optimiser step, eager or as a CUDA graph
    gan_eval.py    the generator's validation and the label-free choice of checkpoint_best.pt
    gan_state.py   a run's checkpoint contents and resuming from them
    curves.py      pictures of a run's metrics.jsonl and of a sweep's runs
    sweep.py       runs over seeds and settings, the label-free choice (`python -m asr_gan.train.sweep`)
    sweep_plan.py  a sweep's settings, grid / named-settings parsing, the runs and each run's config
    sweep_runs.py  launching the runs as subprocesses in worker slots over the GPUs / CPU threads
    sweep_results.py  each run's metrics.jsonl, the label-free choice, which runs converged
    sweep_report.py   the sweep's tables, curves picture, sweep.md and sweep.json
    ctc.py         supervised CTC training (topline, self-training student); ctc_data.py labels and batches,
                   ctc_outputs.py greedy transcripts, log-posteriors, PER
    encoder_student.py  the shipped phone encoder fine-tuned on pseudo-labels (the chain's student)
    evaluate.py    PER of a trained generator on labelled segments
    eodm.py        EODM: N-gram matching over the corpus, no discriminator (`python -m asr_gan.train.eodm`);
                   eodm_counts.py the text's N-grams and the outputs' expected merged ones
"""
