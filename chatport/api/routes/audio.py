"""POST /v1/audio/transcriptions and POST /v1/audio/speech, in OpenAI's shapes, so that
the SDKs' ``client.audio.transcriptions.create`` and ``client.audio.speech.create`` work."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from chatport.protocol.errors import InvalidRequestError
from chatport.protocol.requests import SpeechRequest
from chatport.protocol.validation import parse_json_object, validate
from chatport.service.audio import AudioService

router = APIRouter()


def _audio(request: Request) -> AudioService:
    audio: AudioService = request.app.state.services.chat.audio
    return audio


@router.post("/audio/transcriptions")
async def create_transcription(request: Request) -> Response:
    try:
        form = await request.form(max_files=1, max_fields=16)
    except Exception:  # a body that is not multipart form data
        raise InvalidRequestError(
            "Invalid request body: expected multipart/form-data with a 'file' and a 'model'.", code="invalid_request"
        ) from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequestError("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    if not isinstance(form.get("model"), str):
        raise InvalidRequestError("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    response_format = form.get("response_format", "json")
    body, media_type = await _audio(request).transcription(await upload.read(), str(response_format))
    return Response(body, media_type=media_type)


@router.post("/audio/speech")
async def create_speech(request: Request) -> Response:
    speech = validate(SpeechRequest, parse_json_object(await request.body()))
    data, media_type = await _audio(request).speech(speech)
    return Response(data, media_type=media_type)
