"""Which --model a --mmproj belongs to: the one before it on the command line."""

from __future__ import annotations

import os

import pytest
import typer

from chatport.cli import _projectors


def test_each_projector_belongs_to_the_model_before_it():
    argv = [
        "serve",
        "--model",
        "a.gguf",
        "--model",
        "b.gguf",
        "--mmproj",
        "b-proj.gguf",
        "--model=c.gguf",
        "--mmproj=c-proj.gguf",
    ]
    assert _projectors(argv, 3, ["b-proj.gguf", "c-proj.gguf"]) == [
        None,
        os.path.abspath("b-proj.gguf"),
        os.path.abspath("c-proj.gguf"),
    ]


def test_without_a_model_the_projector_is_the_default_models():
    assert _projectors(["serve", "--mmproj", "p.gguf"], 1, ["p.gguf"]) == [os.path.abspath("p.gguf")]


@pytest.mark.parametrize(
    "argv,given,says",
    [
        (["--mmproj", "p.gguf", "--model", "a.gguf"], ["p.gguf"], "give the --model first"),
        (["--model", "a.gguf", "--mmproj", "p.gguf", "--mmproj", "q.gguf"], ["p.gguf", "q.gguf"], "one --mmproj per --model"),
    ],
)
def test_projectors_that_belong_to_no_model_or_double_up_are_refused(argv, given, says):
    with pytest.raises(typer.BadParameter, match=says):
        _projectors(argv, 1, given)
