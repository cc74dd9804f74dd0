"""mf.Network's record: to_dict/from_dict round trip (through strict JSON) and the summary results record."""

import json
import math

import pytest

import meanfield as mf
from meanfield.errors import InvalidParameterError


def test_round_trip_through_json():
    n = mf.Network((10, 20, 30, 2), (1.1, 1.2, 0.9), (0.1, 0.0, 0.2), ["tanh", "x*tanh(x)"], ["orthogonal", "gaussian",
                   "gaussian"], sigma_w_error=(0.01, 0.02, 0.03), sigma_b_error=0.0)
    back = mf.Network.from_dict(json.loads(json.dumps(n.to_dict(), allow_nan=False)))
    assert back == n
    assert back.sigma_w_error == (0.01, 0.02, 0.03) and back.sigma_b_error == (0.0, 0.0, 0.0)
    with pytest.raises(InvalidParameterError, match="unknown keys"):
        mf.Network.from_dict({**n.to_dict(), "depth": 2})


def test_summary_common_values_and_mixed():
    u = mf.Network.uniform("tanh", 1.25, 0.5, 4, 64, output_width=3, weights="orthogonal")
    assert u.summary() == dict(activation="tanh", sigma_w=1.25, sigma_b=0.5, weights="orthogonal")
    m = mf.Network((8, 8, 8, 1), (1.0, 2.0, 1.0), 0.25, ["tanh", "relu"], ["gaussian", "orthogonal", "gaussian"])
    s = m.summary()
    assert s["activation"] == "tanh,relu" and s["weights"] == "mixed" and s["sigma_b"] == 0.25
    assert math.isnan(s["sigma_w"])


def test_uniform_without_biases_needs_sigma_b_zero():
    n = mf.Network.uniform("tanh", 1.3, 0.0, 3, 100, biases=False)
    assert n.sigma_b == (0.0,) * 4 and n.biases == (False,) * 4
    with pytest.raises(InvalidParameterError, match="sigma_b must be 0"):
        mf.Network.uniform("tanh", 1.3, 0.3, 3, 100, biases=False)
