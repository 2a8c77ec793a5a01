"""Shared fixtures: synthesised TIMIT and LibriSpeech corpora, built once per test session.

Tests that damage files take the `*_copy` fixtures (a private copy per test), so the pristine corpus stays shared.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.librispeech_layout import LM_TEXT_NAME, make_librispeech_fixture
from tests.fixtures.timit_layout import make_timit_fixture


@pytest.fixture(scope="session")
def timit_corpus(tmp_path_factory) -> Path:
    """Upper-case TIMIT layout: 4 TRAIN speakers, 2 dev + 2 core-test + 1 other TEST speaker, 10 utts each."""
    return make_timit_fixture(tmp_path_factory.mktemp("timit_upper"))


@pytest.fixture(scope="session")
def librispeech_corpus(tmp_path_factory) -> Path:
    """LibriSpeech layout: train-clean-100 and dev-clean, 2 readers x 2 utterances; LM text beside it."""
    return make_librispeech_fixture(tmp_path_factory.mktemp("librispeech"))


def _copy(corpus: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy" / corpus.name
    shutil.copytree(corpus, target)
    return target


@pytest.fixture
def timit_corpus_copy(timit_corpus, tmp_path) -> Path:
    """A private copy of `timit_corpus` that the test may damage."""
    return _copy(timit_corpus, tmp_path)


@pytest.fixture
def librispeech_corpus_copy(librispeech_corpus, tmp_path) -> Path:
    """A private copy of `librispeech_corpus` (LM text included, beside it) that the test may damage."""
    target = _copy(librispeech_corpus, tmp_path)
    lm_text = librispeech_corpus.parent / LM_TEXT_NAME
    shutil.copy(lm_text, target.parent / LM_TEXT_NAME)
    return target
