"""GET /v1/models and /v1/models/{model}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from chatport.protocol import responses as rs
from chatport.service.models import ModelRegistry

router = APIRouter()


def _registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.services.registry
    return registry


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    return rs.model_list(rs.model_object(name, m.capabilities.created, m.owned_by) for name, m in _registry(request).names())


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, request: Request) -> dict[str, Any]:
    model = _registry(request).resolve(model_id)
    return rs.model_object(model_id, model.capabilities.created, model.owned_by)
