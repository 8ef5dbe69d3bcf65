"""Stored completions: GET/POST/DELETE /v1/chat/completions[/{id}[/messages]]."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from chatport.protocol.validation import parse_json_object
from chatport.service.stored import StoredCompletions, required

router = APIRouter()


def _stored(request: Request) -> StoredCompletions:
    return required(request.app.state.services.stored)


def _project(request: Request) -> str:
    project: str = request.state.project
    return project


Stored = Annotated[StoredCompletions, Depends(_stored)]
Project = Annotated[str, Depends(_project)]


@router.get("/chat/completions")
async def list_completions(request: Request, stored: Stored, project: Project) -> dict[str, Any]:
    return await stored.list_completions(project, request.query_params.multi_items())


@router.get("/chat/completions/{completion_id}")
async def retrieve_completion(completion_id: str, stored: Stored, project: Project) -> dict[str, Any]:
    return await stored.retrieve(project, completion_id)


@router.post("/chat/completions/{completion_id}")
async def update_completion(completion_id: str, request: Request, stored: Stored, project: Project) -> dict[str, Any]:
    body = parse_json_object(await request.body())
    return await stored.update(project, completion_id, body)


@router.delete("/chat/completions/{completion_id}")
async def delete_completion(completion_id: str, stored: Stored, project: Project) -> dict[str, Any]:
    return await stored.delete(project, completion_id)


@router.get("/chat/completions/{completion_id}/messages")
async def list_messages(completion_id: str, request: Request, stored: Stored, project: Project) -> dict[str, Any]:
    return await stored.messages(project, completion_id, request.query_params.multi_items())
