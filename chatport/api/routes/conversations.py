"""The Conversations API: /v1/conversations[/{id}[/items[/{item_id}]]]."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from chatport.protocol.validation import parse_json_object
from chatport.service.responses.conversations import ConversationsService

router = APIRouter()


def _service(request: Request) -> ConversationsService:
    service: ConversationsService = request.app.state.services.responses.conversations
    return service


def _project(request: Request) -> str:
    project: str = request.state.project
    return project


Service = Annotated[ConversationsService, Depends(_service)]
Project = Annotated[str, Depends(_project)]


@router.post("/conversations")
async def create_conversation(request: Request, service: Service, project: Project) -> dict[str, Any]:
    raw = await request.body()
    # The body is optional here (an empty conversation), as the spec has it.
    return await service.create(project, parse_json_object(raw) if raw.strip() else {})


@router.get("/conversations/{conversation_id}")
async def retrieve_conversation(conversation_id: str, service: Service, project: Project) -> dict[str, Any]:
    return await service.retrieve(project, conversation_id)


@router.post("/conversations/{conversation_id}")
async def update_conversation(conversation_id: str, request: Request, service: Service, project: Project) -> dict[str, Any]:
    return await service.update(project, conversation_id, parse_json_object(await request.body()))


@router.delete("/conversations/{conversation_id}")
async def delete_conversation(conversation_id: str, service: Service, project: Project) -> dict[str, Any]:
    return await service.delete(project, conversation_id)


@router.get("/conversations/{conversation_id}/items")
async def list_items(conversation_id: str, request: Request, service: Service, project: Project) -> dict[str, Any]:
    return await service.list_items(project, conversation_id, request.query_params.multi_items())


@router.post("/conversations/{conversation_id}/items")
async def add_items(conversation_id: str, request: Request, service: Service, project: Project) -> dict[str, Any]:
    return await service.add_items(project, conversation_id, parse_json_object(await request.body()))


@router.get("/conversations/{conversation_id}/items/{item_id}")
async def retrieve_item(conversation_id: str, item_id: str, service: Service, project: Project) -> dict[str, Any]:
    return await service.item(project, conversation_id, item_id)


@router.delete("/conversations/{conversation_id}/items/{item_id}")
async def delete_item(conversation_id: str, item_id: str, service: Service, project: Project) -> dict[str, Any]:
    return await service.delete_item(project, conversation_id, item_id)
