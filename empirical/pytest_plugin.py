"""A pytest plugin: the ``mean_field_check`` fixture, for asserting in a test suite that a model is what the mean-field
theory says it is (:func:`empirical.testing.assert_model_matches_theory`).

Enable it in the top-level ``conftest.py`` with ``pytest_plugins = ["empirical.pytest_plugin"]`` (or import the
fixture into a test module), then::

    def test_my_model_is_initialised_at_the_edge_of_chaos(mean_field_check):
        model = build_model()
        report = empirical.initialize_(model, generator=0)
        mean_field_check(model, inputs, network=report.network)   # raises AssertionError listing what missed

The fixture turns TF32 matmuls off on CUDA for the duration of a check (restored afterwards); the model is measured
in its own dtype (float64 recommended).
"""

from __future__ import annotations

import pytest
import torch

from empirical.testing import assert_model_matches_theory

__all__ = ["mean_field_check"]


@pytest.fixture
def mean_field_check():
    """``check(model, inputs, network=None, **kwargs)`` → the ResultTable, or AssertionError quoting the misses
    (:func:`empirical.testing.assert_model_matches_theory`)."""

    def check(model, inputs, network=None, **kwargs):
        cuda = torch.cuda.is_available()
        prev = torch.backends.cuda.matmul.allow_tf32 if cuda else None
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = False
        try:
            return assert_model_matches_theory(model, inputs, network, **kwargs)
        finally:
            if cuda:
                torch.backends.cuda.matmul.allow_tf32 = prev

    return check
