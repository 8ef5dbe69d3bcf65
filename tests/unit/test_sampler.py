import numpy as np
import pytest

from chatport.engine.sampler import SamplerState, sample
from chatport.protocol.backend import SamplingParams

V = 50


def logits(rows, seed=0):
    return np.random.default_rng(seed).normal(size=(rows, V)).astype(np.float32)


def test_greedy_is_argmax():
    x = logits(3)
    states = [SamplerState.create(SamplingParams(temperature=0.0), 0) for _ in range(3)]
    assert [c.token for c in sample(x, states)] == list(x.argmax(axis=1))


def test_seeded_rows_do_not_depend_on_batch_neighbours():
    x = logits(4)
    params = SamplingParams(temperature=1.0, seed=42)
    alone = [sample(x[:1], [SamplerState.create(params, 0)])[0].token for _ in range(1)]
    crowd_states = [SamplerState.create(params, 0)] + [SamplerState.create(SamplingParams(seed=i), 0) for i in range(3)]
    crowd = sample(x, crowd_states)[0].token
    assert alone[0] == crowd


def test_logit_bias_forces_and_bans():
    x = logits(1)
    forced = SamplerState.create(SamplingParams(temperature=1.0, logit_bias=((7, 100.0),), seed=1), 0)
    assert all(sample(x, [forced])[0].token == 7 for _ in range(20))
    top = int(x[0].argmax())
    banned = SamplerState.create(SamplingParams(temperature=0.0, logit_bias=((top, -100.0),)), 0)
    assert sample(x, [banned])[0].token != top


def test_penalties_lower_repeated_tokens():
    x = np.zeros((1, V), dtype=np.float32)
    x[0, 3] = 1.0
    state = SamplerState.create(SamplingParams(temperature=0.0, frequency_penalty=2.0), 0)
    state.record(3)
    assert sample(x, [state])[0].token != 3


def test_logprobs_are_exact_log_softmax_and_sorted():
    x = logits(1)
    state = SamplerState.create(SamplingParams(temperature=0.0, logprobs=True, top_logprobs=5), 0)
    choice = sample(x, [state])[0]
    expected = x[0] - np.log(np.exp(x[0]).sum())
    assert choice.logprob == pytest.approx(float(expected[choice.token]), abs=1e-5)
    values = [lp for _, lp in choice.top]
    assert values == sorted(values, reverse=True)
    assert choice.top[0][0] == choice.token


def test_top_p_keeps_only_the_nucleus():
    x = np.full((1, V), -10.0, dtype=np.float32)
    x[0, 1], x[0, 2] = 5.0, 4.9  # two tokens hold nearly all the mass
    state = SamplerState.create(SamplingParams(temperature=1.0, top_p=0.5, seed=3), 0)
    picks = {sample(x, [state])[0].token for _ in range(50)}
    assert picks == {1}


def test_temperature_sampling_follows_the_distribution():
    x = np.log(np.array([[0.7, 0.2, 0.1]], dtype=np.float32))
    state = SamplerState.create(SamplingParams(temperature=1.0, seed=9), 0)
    counts = np.bincount([sample(x, [state])[0].token for _ in range(3000)], minlength=3) / 3000
    assert counts == pytest.approx([0.7, 0.2, 0.1], abs=0.04)


def test_a_seed_gives_the_same_draws_and_each_choice_its_own_stream():
    x = logits(1, seed=3)
    params = SamplingParams(temperature=1.5, seed=2024)

    def draws(choice: int) -> list[int]:
        state = SamplerState.create(params, choice)
        return [sample(x, [state])[0].token for _ in range(40)]

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)


def test_a_tiny_top_p_keeps_only_the_best_token():
    x = logits(1, seed=5)
    state = SamplerState.create(SamplingParams(temperature=2.0, top_p=1e-9, seed=1), 0)
    assert {sample(x, [state])[0].token for _ in range(30)} == {int(x.argmax())}


def test_logit_bias_minus_one_hundred_on_all_but_one_token_leaves_that_token():
    x = logits(1, seed=6)
    bias = tuple((t, -100.0) for t in range(V) if t != 11)
    state = SamplerState.create(SamplingParams(temperature=1.0, logit_bias=bias, seed=3), 0)
    assert {sample(x, [state])[0].token for _ in range(30)} == {11}


def test_a_grammar_mask_wins_over_any_bias():
    x = logits(1, seed=7)
    state = SamplerState.create(SamplingParams(temperature=1.0, logit_bias=((4, 100.0),), seed=9), 0)
    state.allowed = np.zeros(V, dtype=bool)
    state.allowed[[20, 21]] = True
    assert {sample(x, [state])[0].token for _ in range(30)} <= {20, 21}


def test_forgetting_a_token_undoes_its_penalty():
    state = SamplerState.create(SamplingParams(presence_penalty=1.0), 0)
    for token in (3, 3, 4):
        state.record(token)
    state.forget(3)
    state.forget(4)
    assert state.counts == {3: 1}


def test_rows_pick_the_logits_row_of_each_state():
    x = logits(4, seed=8)
    states = [SamplerState.create(SamplingParams(temperature=0.0), 0) for _ in range(2)]
    assert [c.token for c in sample(x, states, rows=[3, 1])] == [int(x[3].argmax()), int(x[1].argmax())]


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-40, 1e-7])
def test_a_temperature_below_float32s_range_samples_the_best_token(temperature):
    # Found by the schema fuzzer: 1e-300 is a valid temperature, and it divided by zero.
    x = logits(4, seed=3)
    states = [SamplerState.create(SamplingParams(temperature=temperature, seed=i), 0) for i in range(4)]
    assert [c.token for c in sample(x, states)] == list(x.argmax(axis=1))


def test_where_a_grammar_may_end_the_forbidden_tokens_weight_goes_to_ending():
    # Token 0 ends; the grammar allows 0 and 1 (say, another call's first letter). The
    # model wants 2 (prose): greedy, that ends the answer instead of forcing token 1.
    x = np.full((1, V), -10.0, dtype=np.float32)
    x[0, 1], x[0, 2] = 1.0, 3.0
    state = SamplerState.create(SamplingParams(temperature=0.0, logprobs=True), 0)
    state.allowed = np.zeros(V, dtype=bool)
    state.allowed[[0, 1]] = True
    state.end_outside = 0
    choice = sample(x, [state])[0]
    assert choice.token == 0
    # The end token carries the weight of everything outside: p(end) = 1 - p(1).
    p1 = np.exp(1.0) / np.exp(x[0]).sum()
    assert np.exp(choice.logprob) == pytest.approx(1 - p1, rel=1e-4)
    # When the model's own choice is allowed it is kept; without end_outside, masked as ever.
    x[0, 1] = 6.0
    assert sample(x, [state])[0].token == 1
    x[0, 1] = 1.0
    state.end_outside = None
    assert sample(x, [state])[0].token == 1
    # A client that bans the end token keeps it banned, weight or not.
    banned = SamplerState.create(SamplingParams(temperature=0.0, logit_bias=((0, -100.0),)), 0)
    banned.allowed, banned.end_outside = state.allowed, 0
    assert sample(x, [banned])[0].token == 1
