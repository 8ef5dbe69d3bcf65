"""The Responses API: POST /v1/responses, GET/DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from chatport.api.routes.chat import CLIENT_CLOSED, answer, unless_client_leaves
from chatport.api.sse import encode_named_events
from chatport.protocol.validation import parse_json_object
from chatport.service.chat import Meter
from chatport.service.responses.service import ResponsesService

router = APIRouter()


def _service(request: Request) -> ResponsesService:
    service: ResponsesService = request.app.state.services.responses
    return service


def _project(request: Request) -> str:
    project: str = request.state.project
    return project


Service = Annotated[ResponsesService, Depends(_service)]
Project = Annotated[str, Depends(_project)]


@router.post("/responses")
async def create_response(request: Request, service: Service) -> Response:
    body = parse_json_object(await request.body())
    response = await unless_client_leaves(request, _respond(service, body, request.state.project, request.state.ticket))
    return response if response is not None else Response(status_code=CLIENT_CLOSED)


async def _respond(service: ResponsesService, body: dict[str, Any], project: str, meter: Meter) -> Response:
    return await answer(await service.start(body, project, meter), encode_named_events)


@router.get("/responses/{response_id}")
async def retrieve_response(response_id: str, service: Service, project: Project) -> dict[str, Any]:
    return await service.retrieve(project, response_id)


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, service: Service, project: Project) -> dict[str, Any]:
    return await service.delete(project, response_id)


@router.post("/responses/{response_id}/cancel")
async def cancel_response(response_id: str, service: Service, project: Project) -> dict[str, Any]:
    return await service.cancel(project, response_id)


@router.get("/responses/{response_id}/input_items")
async def list_input_items(response_id: str, request: Request, service: Service, project: Project) -> dict[str, Any]:
    return await service.input_items(project, response_id, request.query_params.multi_items())
