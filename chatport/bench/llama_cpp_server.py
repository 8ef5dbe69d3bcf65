"""llama-cpp-python's own server (``python -m llama_cpp.server``), with the one change
chatport also needs on AVX-512/AMX hosts: weight repacking off, without which this
llama.cpp build crashes on multi-token decodes. Everything else is the stock server."""

from typing import Any

import llama_cpp.llama_cpp as lc

_default_params = lc.llama_model_default_params


def _params_without_repacking() -> Any:
    params = _default_params()
    params.use_extra_bufts = False
    return params


lc.llama_model_default_params = _params_without_repacking

from llama_cpp.server.__main__ import main  # noqa: E402

main()  # type: ignore[no-untyped-call]
