"""Results of a recipe: the RESULTS.md / RESULTS.json summary and the pictures beside it.

    collect.py   read an experiment folder (scores, label-free selection, segments per phone, timings,
                 settings, commands) into a Summary
    summary.py   render a Summary as RESULTS.md, draw its pictures, write RESULTS.md and RESULTS.json
    plots.py     spectrograms with reference and hypothesis phones in time (training curves: train/curves.py)
    __main__.py  `python -m asr_gan.results --exp exp/demo [--scores NAME=PATH ...]`
"""
